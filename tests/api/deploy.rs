//! What the project ships for installing it: the systemd unit passes
//! `systemd-analyze verify`, with only the binary's and the settings file's paths
//! pointed at this build.

use crate::helpers::*;

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = std::path::Path::new("/usr/bin/systemd-analyze");
    if !analyze.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have systemd-analyze (Debian's systemd package)"
        );
        println!("systemd unit check skipped: systemd-analyze is not installed");
        return;
    }
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/paywall.service"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("paywall.env");
    std::fs::write(&settings, format!("PAYWALL_JWT_SECRET={SECRET}\n")).unwrap();
    let mut unit = shipped.clone();
    for (from, to) in [
        (
            "/usr/local/bin/paywall",
            env!("CARGO_BIN_EXE_paywall").to_string(),
        ),
        ("/etc/paywall/paywall.env", settings.display().to_string()),
    ] {
        assert!(unit.contains(from), "the unit no longer names {from}");
        unit = unit.replace(from, &to);
    }
    let path = dir.path().join("paywall.service");
    std::fs::write(&path, unit).unwrap();
    let output = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(
        !said.contains("paywall.service"),
        "warnings about the unit: {said}"
    );
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=paywall",
        "EnvironmentFile=",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(shipped.contains(hardening), "{hardening}");
    }
}
