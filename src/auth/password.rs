//! Argon2id hashing on the blocking pool, behind a bound, so sign-ins never stall the
//! async workers that serve article reads.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::ApiError;

/// OWASP's minimum for Argon2id: 19 MiB, two passes, one lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    // These constants are within argon2's limits; `Params::new` cannot fail on them.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes to a PHC string with a fresh random salt. Blocking: call through `PasswordHasher`.
pub fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    /// It matches; `rehash` when the stored hash is weaker than the configured cost
    /// or of another algorithm (imported bcrypt), so it should be re-made now.
    Yes {
        rehash: bool,
    },
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// Whether a stored hash is one this service can verify: Argon2 PHC or bcrypt.
pub fn is_supported_hash(hash: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt::HashParts::from_str(hash).is_ok();
    }
    PasswordHash::new(hash).is_ok_and(|parsed| parsed.algorithm.as_str().starts_with("argon2"))
}

fn below_configured_cost(parsed: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < M_COST_KIB
        || params.t_cost() < T_COST
        || params.p_cost() < P_COST
}

/// Checks a password against an Argon2 PHC string (with the parameters it names) or
/// a bcrypt hash.
pub fn verify_blocking(password: &str, stored: &str) -> Verified {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verified::Yes { rehash: true },
            _ => Verified::No,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Verified::Yes {
            rehash: below_configured_cost(&parsed),
        },
        Err(_) => Verified::No,
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The nice value of the hashing threads. A hash is 15 to 25 ms of one core; at the
/// default priority, a flood of sign-ins takes whole time slices from the HTTP workers
/// and every article read waits behind them (a teaser's p99 went from 8 to 22 ms). At
/// nice 10 the kernel gives the workers about nine tenths of a contended core, so reads
/// keep their latency; hashing still gets every cycle the workers leave idle.
const HASHING_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority (Linux sets nice per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its three integer arguments; `0` names the
        // calling thread. Failure leaves the priority as it was, which is harmless.
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASHING_NICE) };
        if done != 0 {
            tracing::warn!("could not lower the priority of a password hashing thread");
        }
    }
}

/// Argon2 work runs on a few dedicated threads, one per permitted concurrent hash.
/// Keeping them few and long-lived bounds the CPU that sign-ins take from article reads,
/// and the memory: each thread reuses its own 19 MiB instead of the allocator keeping a
/// copy for every thread of a large blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Verified against when the account is unknown, so both answers take as long.
    dummy_hash: Arc<str>,
}

/// Hashes waiting for a thread at most; past that, sign-ins are told to retry.
const QUEUE: usize = 256;

impl PasswordHasher {
    /// `concurrency` hashes run at once; up to `QUEUE` more wait their turn.
    pub fn new(concurrency: usize) -> Result<Self, argon2::password_hash::Error> {
        let dummy = hash_blocking("dummy password for unknown accounts")?;
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..concurrency.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("paywall-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = {
                            let receiver = queue.lock().unwrap_or_else(|p| p.into_inner());
                            match receiver.recv() {
                                Ok(job) => job,
                                Err(_) => return,
                            }
                        };
                        job();
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password hashing thread");
            }
        }
        Ok(PasswordHasher {
            jobs,
            dummy_hash: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs.try_send(job).map_err(|error| match error {
            std::sync::mpsc::TrySendError::Full(_) => ApiError::RateLimited {
                retry_after_secs: 1,
            },
            std::sync::mpsc::TrySendError::Disconnected(_) => {
                ApiError::internal("password hashing threads have stopped")
            }
        })?;
        answer
            .await
            .map_err(|_| ApiError::internal("a password hashing thread stopped"))
    }

    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        self.run(move || hash_blocking(password.expose()))
            .await?
            .map_err(ApiError::internal)
    }

    /// `stored` None (unknown account, or no password set) still costs one verification.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let verified = self
            .run(move || verify_blocking(password.expose(), &phc))
            .await?;
        Ok(if known { verified } else { Verified::No })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_at_the_minimum_cost() {
        let phc = hash_blocking("une phrase de passe").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            verify_blocking("une phrase de passe", &phc),
            Verified::Yes { rehash: false }
        );
        assert_eq!(verify_blocking("une phrase de passE", &phc), Verified::No);
        assert_eq!(
            verify_blocking("une phrase de passe", "not a hash"),
            Verified::No
        );
        assert!(is_supported_hash(&phc));
    }

    #[test]
    fn weaker_hashes_and_bcrypt_verify_and_ask_to_be_rehashed() {
        let weak = {
            let params = Params::new(8 * 1024, 1, 1, None).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"old cheap hash", &salt)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            verify_blocking("old cheap hash", &weak),
            Verified::Yes { rehash: true }
        );
        let argon2i = {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
                .hash_password(b"other variant", &salt)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            verify_blocking("other variant", &argon2i),
            Verified::Yes { rehash: true }
        );
        let bcrypted = bcrypt::hash("imported from elsewhere", 4).unwrap();
        assert!(is_supported_hash(&bcrypted));
        assert_eq!(
            verify_blocking("imported from elsewhere", &bcrypted),
            Verified::Yes { rehash: true }
        );
        assert_eq!(
            verify_blocking("imported from elsewherE", &bcrypted),
            Verified::No
        );
        assert!(!is_supported_hash("$2b$04$short"));
        assert!(!is_supported_hash("md5:abcdef"));
        assert!(!is_supported_hash("$pbkdf2-sha256$29000$salt$hash"));
    }

    #[tokio::test]
    async fn unknown_accounts_never_match_even_the_dummy_password() {
        let hasher = PasswordHasher::new(1).unwrap();
        let given = Password::parse_given("dummy password for unknown accounts").unwrap();
        assert_eq!(hasher.verify(given, None).await.unwrap(), Verified::No);
    }
}
