//! What the process gives back to the system: heap pages the allocator holds free, and
//! pages of the binary's machine code that are not being run.

use std::sync::OnceLock;

/// Returns the allocator's free memory to the system (glibc's `malloc_trim`, which
/// also gives back whole free pages inside its heaps).
pub fn give_freed_heap_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heaps, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The binary's mappings that hold nothing but the file's bytes: found once, the first
/// time the code is let go.
static CODE: OnceLock<Vec<(usize, usize)>> = OnceLock::new();

/// Unmaps this binary's machine code (and the constants beside it) from the process,
/// to be mapped again page by page as it runs. Each page of code run stays resident
/// until the process ends, and the kernel maps 64 KiB around each page it faults in:
/// starting runs code from most of the binary once, and a serving process comes to
/// hold most of its 15 MB of code though it runs a few MiB of it (bench/RESULTS.md).
/// The pages stay in the system's file cache, so the next run of one costs a minor
/// fault, not a read. Only mappings never written are let go, so mapping them again
/// gives the same bytes (the binary is replaced by a rename on upgrade, which keeps the
/// running file).
///
/// The first call reads `/proc/self/smaps`: make it off the async runtime's threads.
pub fn let_code_go() {
    #[cfg(target_os = "linux")]
    for &(start, end) in CODE.get_or_init(code_mappings) {
        // SAFETY: the range is a whole private, read-only mapping of this binary's
        // file that held no page of its own (`Anonymous: 0`) when the kernel listed
        // it, and read-only mappings are never written; MADV_DONTNEED drops its pages,
        // and the next access maps the same bytes of the file again.
        let done = unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end.saturating_sub(start),
                libc::MADV_DONTNEED,
            )
        };
        if done != 0 {
            tracing::debug!("could not let go of the binary's code");
        }
    }
}

/// The address ranges of the binary's read-only mappings that hold no page of their
/// own, from `/proc/self/smaps`; none where it cannot be read.
fn code_mappings() -> Vec<(usize, usize)> {
    let (Ok(smaps), Ok(exe)) = (
        std::fs::read_to_string("/proc/self/smaps"),
        std::fs::read_link("/proc/self/exe"),
    ) else {
        return Vec::new();
    };
    file_only_mappings(&smaps, &exe.to_string_lossy())
}

/// Each mapping in `smaps`: its header line (range, permissions, ..., path), then its
/// counters, among them `Anonymous`: the pages written, which only this process holds.
/// A mapping of `exe` with none, and not writable, holds nothing but the file's bytes.
fn file_only_mappings(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut mapping: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            mapping = match (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                (Ok(start), Ok(end)) if path == exe && !perms.contains('w') => Some((start, end)),
                _ => None,
            };
            continue;
        }
        if first != "Anonymous:" {
            continue;
        }
        if let Some(range) = mapping.take() {
            if fields.next() == Some("0") {
                found.push(range);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 fe:01 123 /srv/paywall
Size:               1024 kB
Anonymous:             0 kB
55d0c0100000-55d0c0e00000 r-xp 00100000 fe:01 123 /srv/paywall
Rss:                 900 kB
Anonymous:             0 kB
55d0c0e00000-55d0c0f00000 r--p 00e00000 fe:01 123 /srv/paywall
Anonymous:           560 kB
55d0c0f00000-55d0c0f10000 rw-p 00f00000 fe:01 123 /srv/paywall
Anonymous:            64 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Anonymous:          1024 kB
";

    #[test]
    fn only_the_binarys_unwritten_read_only_mappings_are_let_go() {
        assert_eq!(
            file_only_mappings(SMAPS, "/srv/paywall"),
            vec![
                (0x55d0_c000_0000, 0x55d0_c010_0000),
                (0x55d0_c010_0000, 0x55d0_c0e0_0000)
            ],
            "the relocated constants (written once, then made read-only), the data, \
             other files and anonymous memory stay"
        );
        assert!(file_only_mappings(SMAPS, "/srv/other").is_empty());
        assert!(file_only_mappings("", "/srv/paywall").is_empty());
    }

    /// This process's file-backed resident memory, in KiB.
    fn resident_file_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("RssFile:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn letting_the_code_go_unmaps_it_and_leaves_it_runnable() {
        let before = resident_file_kib();
        let_code_go();
        let after = resident_file_kib();
        assert!(
            after < before,
            "{after} KiB of files resident, {before} before"
        );
        // The code let go runs again, mapped back as it is reached; a second call
        // reuses the mappings found by the first.
        let_code_go();
        assert!(!CODE.get().unwrap().is_empty());
    }
}
