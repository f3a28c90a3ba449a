//! Argon2id hashing on a few threads of its own, behind a bound, so sign-ins never
//! stall the async workers that serve article reads.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use std::str::FromStr;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::engine::MemoryLender;
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

thread_local! {
    /// Each thread's Argon2 memory (19 MiB at the configured cost), kept while hashes
    /// keep coming (see `release_kept_memory`). Allocating and freeing it for every
    /// hash left glibc holding several copies per thread, fragmented: a sign-in flood
    /// peaked at 272 MiB, and at 566 MiB with two malloc arenas (bench/RESULTS.md).
    /// Argon2 writes every block before it reads it, so the memory needs no clearing
    /// between hashes.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Who lends this thread the memory it hashes in (a hashing thread's, see
    /// `PasswordHasher::with_lender`), and how much it holds of it now.
    static LENDER: std::cell::RefCell<Option<Arc<dyn MemoryLender>>> = const { std::cell::RefCell::new(None) };
    static LENT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// What `blocks` Argon2 blocks hold once written, counted in whole huge pages (2 MiB),
/// which the buffer asks for (see `ask_for_huge_pages`).
fn held_bytes(blocks: usize) -> usize {
    const HUGE: usize = 2 << 20;
    (blocks * std::mem::size_of::<argon2::Block>()).next_multiple_of(HUGE)
}

fn lend(bytes: usize) {
    LENDER.with(|lender| {
        if let Some(lender) = lender.borrow().as_ref() {
            lender.lend(bytes);
            LENT.with(|lent| lent.set(lent.get() + bytes));
        }
    });
}

fn give_back(bytes: usize) {
    LENDER.with(|lender| {
        if let Some(lender) = lender.borrow().as_ref() {
            let bytes = LENT.with(|lent| {
                let given = bytes.min(lent.get());
                lent.set(lent.get() - given);
                given
            });
            if bytes > 0 {
                lender.give_back(bytes);
            }
        }
    });
}

/// Whether this thread holds Argon2 memory now.
fn holds_memory() -> bool {
    lent_now() > 0 || BLOCKS.with(|b| b.borrow().capacity() > 0)
}

/// What this thread's lender has lent it now.
fn lent_now() -> usize {
    LENT.with(std::cell::Cell::get)
}

/// Gives this thread's Argon2 memory back (to the system, then to its lender): a burst
/// of sign-ins reuses one buffer per thread, and a quiet service holds none. (The
/// binary sets glibc's mmap threshold, so the buffer goes back to the system, not to a
/// heap.)
pub fn release_kept_memory() {
    BLOCKS.with(|blocks| drop(std::mem::take(&mut *blocks.borrow_mut())));
    give_back(lent_now());
}

/// Asks the kernel to back `blocks`' whole allocation with huge pages (2 MiB) as it is
/// first written. Argon2 reads its 19 MiB in an order that depends on the data, and in
/// 4 KiB pages most of those reads also miss the processor's address translation cache.
/// Where transparent huge pages are off, or the range cannot have them, this does
/// nothing.
fn ask_for_huge_pages(blocks: &Vec<argon2::Block>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = blocks.as_ptr() as usize;
        let end = start + blocks.capacity() * std::mem::size_of::<argon2::Block>();
        // madvise takes whole pages; the huge pages themselves fit inside the range.
        let (first, last) = (start.next_multiple_of(4096), end & !4095);
        if last.saturating_sub(first) >= HUGE {
            // SAFETY: the range lies inside this Vec's own allocation, which stays
            // allocated; MADV_HUGEPAGE changes how its pages are backed, not their
            // contents, and on failure nothing changes.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

/// `argon2.hash_password_into` on this thread's kept memory. A hash that needs more than
/// the configured cost (an imported one) gets memory of its own for the call, so one
/// such hash does not keep a thread's footprint up.
fn hash_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let needed = argon2.params().block_count();
    let kept = usize::try_from(M_COST_KIB).unwrap_or(usize::MAX);
    if needed > kept {
        lend(held_bytes(needed));
        let mut own = vec![argon2::Block::default(); needed];
        let hashed = argon2.hash_password_into_with_memory(password, salt, out, &mut own);
        drop(own);
        give_back(held_bytes(needed));
        return hashed;
    }
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < needed {
            let missing = needed - blocks.len();
            if blocks.capacity() == 0 {
                lend(held_bytes(kept));
            }
            blocks.reserve_exact(missing);
            ask_for_huge_pages(&blocks);
            blocks.resize(needed, argon2::Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
    })
}

/// Hashes to a PHC string with a fresh random salt. Blocking: call through `PasswordHasher`.
pub fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buffer)?;
    let argon2 = argon2();
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(hash_into(&argon2, password.as_bytes(), salt_bytes, out)?)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` hashes to `parsed`'s output under the algorithm, version and
/// parameters it names (what argon2's `verify_password` does, on this thread's memory).
fn argon2_matches(
    password: &str,
    parsed: &PasswordHash<'_>,
) -> argon2::password_hash::Result<bool> {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let argon2 = Argon2::new(algorithm, version, Params::try_from(parsed)?);
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
    let computed = Output::init_with(expected.len(), |out| {
        Ok(hash_into(&argon2, password.as_bytes(), salt_bytes, out)?)
    })?;
    // `Output`'s equality is constant-time.
    Ok(computed == *expected)
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

/// Whether a stored hash is one this service can verify: Argon2 PHC, bcrypt, or a
/// WordPress hash (phpass portable, or WordPress 6.8's `$wp$` bcrypt).
pub fn is_supported_hash(hash: &str) -> bool {
    if super::phpass::is_wordpress_hash(hash) {
        return true;
    }
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

/// Checks a password against an Argon2 PHC string (with the parameters it names), a
/// bcrypt hash or a WordPress hash; any but Argon2id at the configured cost asks to be
/// re-made.
pub fn verify_blocking(password: &str, stored: &str) -> Verified {
    if super::phpass::is_wordpress_hash(stored) {
        return match super::phpass::wordpress_matches(password, stored) {
            true => Verified::Yes { rehash: true },
            false => Verified::No,
        };
    }
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verified::Yes { rehash: true },
            _ => Verified::No,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    match argon2_matches(password, &parsed) {
        Ok(true) => Verified::Yes {
            rehash: below_configured_cost(&parsed),
        },
        _ => Verified::No,
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

/// How long a hashing thread keeps its Argon2 memory after its last hash: sign-ins a
/// few seconds apart reuse it, instead of each taking it from the caches again.
const HOLD: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a hash may wait for a thread that holds memory before one that holds none
/// takes it (a third of a hash).
const GRACE: std::time::Duration = std::time::Duration::from_millis(5);

/// The hashes waiting for a thread, shared by the hashing threads.
struct Queue {
    jobs: std::sync::Mutex<Waiting>,
    ready: std::sync::Condvar,
    /// `HOLD` and `GRACE`, but in tests.
    hold: std::time::Duration,
    grace: std::time::Duration,
}

struct Waiting {
    jobs: std::collections::VecDeque<Job>,
    /// Every `PasswordHasher` is gone: the threads end.
    closed: bool,
    /// Threads that hold Argon2 memory.
    warm: usize,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` unless `QUEUE` are waiting already.
    fn offer(&self, job: Job) -> Result<(), ApiError> {
        let mut waiting = self.lock();
        if waiting.jobs.len() >= QUEUE {
            return Err(ApiError::RateLimited {
                retry_after_secs: 1,
            });
        }
        waiting.jobs.push_back(job);
        drop(waiting);
        // Every thread looks (see `next`): the one to take it may not be the first
        // woken. They are few.
        self.ready.notify_all();
        Ok(())
    }

    /// The next job, waiting for one; a thread that waits `hold` gives its Argon2
    /// memory back, then waits on. A thread that holds none leaves a job to the threads
    /// that do, for `GRACE`, unless more are waiting than they are: sign-ins one at a
    /// time keep using one thread's memory, and the caches lend no more. None once the
    /// queue is closed. `counted`: whether this thread is counted in `Waiting::warm`.
    fn next(&self, counted: &mut bool) -> Option<Job> {
        let mut waiting = self.lock();
        let mut since = std::time::Instant::now();
        let mut deferred = false;
        loop {
            let warm = holds_memory();
            if warm != *counted {
                match warm {
                    true => waiting.warm += 1,
                    false => waiting.warm -= 1,
                }
                *counted = warm;
            }
            if !waiting.jobs.is_empty() && (warm || deferred || waiting.jobs.len() > waiting.warm) {
                // Counted from now: the hash it takes leaves it holding memory (and
                // if not, the next call says so).
                if !*counted {
                    waiting.warm += 1;
                    *counted = true;
                }
                return waiting.jobs.pop_front();
            }
            if waiting.closed {
                return None;
            }
            if !warm {
                if waiting.jobs.is_empty() {
                    waiting = self.ready.wait(waiting).unwrap_or_else(|p| p.into_inner());
                    deferred = false;
                } else {
                    let (back, waited) = self
                        .ready
                        .wait_timeout(waiting, self.grace)
                        .unwrap_or_else(|p| p.into_inner());
                    waiting = back;
                    deferred = waited.timed_out();
                }
                continue;
            }
            let left = self.hold.saturating_sub(since.elapsed());
            if left.is_zero() {
                drop(waiting);
                release_kept_memory();
                waiting = self.lock();
                since = std::time::Instant::now();
                continue;
            }
            waiting = self
                .ready
                .wait_timeout(waiting, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Closes the queue when the last `PasswordHasher` goes.
struct Open(Arc<Queue>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Argon2 work runs on a few dedicated threads, one per permitted concurrent hash.
/// Keeping them few and long-lived bounds the CPU that sign-ins take from article reads,
/// and the memory: each thread reuses its own 19 MiB instead of the allocator keeping a
/// copy for every thread of a large blocking pool. With a lender (the engine's caches),
/// that memory is taken from the caches while a thread holds it.
#[derive(Clone)]
pub struct PasswordHasher {
    /// The queue, closed when the last clone goes.
    open: Arc<Open>,
    /// Verified against when the account is unknown, so both answers take as long.
    dummy_hash: Arc<str>,
}

/// Hashes waiting for a thread at most; past that, sign-ins are told to retry.
const QUEUE: usize = 256;

impl PasswordHasher {
    /// `concurrency` hashes run at once; up to `QUEUE` more wait their turn.
    pub fn new(concurrency: usize) -> Result<Self, argon2::password_hash::Error> {
        Self::with_lender(concurrency, None)
    }

    /// Like `new`, with each thread's Argon2 memory lent by `lender` while it is held.
    pub fn with_lender(
        concurrency: usize,
        lender: Option<Arc<dyn MemoryLender>>,
    ) -> Result<Self, argon2::password_hash::Error> {
        Self::start(concurrency, lender, HOLD, GRACE)
    }

    fn start(
        concurrency: usize,
        lender: Option<Arc<dyn MemoryLender>>,
        hold: std::time::Duration,
        grace: std::time::Duration,
    ) -> Result<Self, argon2::password_hash::Error> {
        let queue = Arc::new(Queue {
            hold,
            grace,
            jobs: std::sync::Mutex::new(Waiting {
                jobs: std::collections::VecDeque::new(),
                closed: false,
                warm: 0,
            }),
            ready: std::sync::Condvar::new(),
        });
        let open = Arc::new(Open(queue.clone()));
        let mut started = 0;
        for n in 0..concurrency.max(1) {
            let queue = queue.clone();
            let lender = lender.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("paywall-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    LENDER.with(|l| *l.borrow_mut() = lender);
                    let mut counted = false;
                    while let Some(job) = queue.next(&mut counted) {
                        job();
                        if lent_now() > 0 {
                            LENDER.with(|lender| {
                                if let Some(lender) = lender.borrow().as_ref() {
                                    lender.hashed();
                                }
                            });
                        }
                    }
                    release_kept_memory();
                });
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, "could not start a password hashing thread"),
            }
        }
        if started == 0 {
            return Err(argon2::password_hash::Error::Crypto);
        }
        // Made on a hashing thread, like every hash, so that no other thread keeps
        // Argon2 memory.
        let (made, dummy) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let dummy = hash_blocking("dummy password for unknown accounts");
            // Not kept: sign-ins may be hours away.
            release_kept_memory();
            let _ = made.send(dummy);
        });
        queue
            .offer(job)
            .map_err(|_| argon2::password_hash::Error::Crypto)?;
        let dummy = dummy
            .recv()
            .map_err(|_| argon2::password_hash::Error::Crypto)??;
        Ok(PasswordHasher {
            open,
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
        self.open.0.offer(job)?;
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
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kept_memory_is_marked_for_huge_pages() {
        hash_blocking("a passphrase to fill the kept memory").unwrap();
        let at = BLOCKS.with(|blocks| blocks.borrow().as_ptr() as usize);
        let maps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        // The mapping that holds the buffer's middle, and its flags ("hg": MADV_HUGEPAGE).
        let middle = at + (M_COST_KIB as usize * 1024) / 2;
        let mut inside = false;
        let mut flags = None;
        for line in maps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((start, end)) = range.split_once('-') {
                    if let (Ok(start), Ok(end)) = (
                        usize::from_str_radix(start, 16),
                        usize::from_str_radix(end, 16),
                    ) {
                        inside = (start..end).contains(&middle);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(found) = line.strip_prefix("VmFlags:") {
                    flags = Some(found.to_string());
                }
            }
        }
        let flags = flags.expect("the buffer's mapping is listed");
        assert!(flags.split_whitespace().any(|f| f == "hg"), "{flags}");
    }

    #[test]
    fn hashes_on_kept_memory_are_the_librarys_own() {
        // Ours verify with the library, the library's with ours, over and over on the
        // same thread's memory (the same salt gives the same string).
        for round in 0..3 {
            let password = format!("phrase de passe n° {round}");
            let ours = hash_blocking(&password).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok());
            let salt = parsed.salt.unwrap();
            let theirs = argon2().hash_password(password.as_bytes(), salt).unwrap();
            assert_eq!(theirs.to_string(), ours);
            assert_eq!(
                verify_blocking(&password, &theirs.to_string()),
                Verified::Yes { rehash: false }
            );
            assert_eq!(verify_blocking("not it", &ours), Verified::No);
        }
        // A hash that needs more memory than the configured cost, then one that needs
        // less, on the same thread.
        for m_cost in [32 * 1024, 8 * 1024] {
            let params = Params::new(m_cost, 1, 1, None).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"imported", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                verify_blocking("imported", &phc),
                Verified::Yes { rehash: true }
            );
            assert_eq!(verify_blocking("imported!", &phc), Verified::No);
        }
        assert!(
            BLOCKS.with(|b| b.borrow().len()) <= M_COST_KIB as usize,
            "kept at the configured cost"
        );
    }

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

    /// Counts what it lends, and the most it lent at once.
    #[derive(Default)]
    struct Recorded {
        lent: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        loans: std::sync::atomic::AtomicUsize,
    }

    impl MemoryLender for Recorded {
        fn lend(&self, bytes: usize) {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.lent.fetch_add(bytes, SeqCst) + bytes;
            self.most.fetch_max(now, SeqCst);
            self.loans.fetch_add(1, SeqCst);
        }
        fn give_back(&self, bytes: usize) {
            self.lent
                .fetch_sub(bytes, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn hashing_memory_is_lent_while_held_and_sign_ins_one_at_a_time_borrow_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let recorded = Arc::new(Recorded::default());
        let lender: Arc<dyn MemoryLender> = recorded.clone();
        // A grace longer than any hash here: the second thread never takes a hash
        // that the first is free to take, however slow the machine.
        let hold = std::time::Duration::from_millis(400);
        let grace = std::time::Duration::from_secs(5);
        let hasher = PasswordHasher::start(2, Some(lender), hold, grace).unwrap();
        let one = held_bytes(M_COST_KIB as usize);
        assert_eq!(one, 20 << 20, "19 MiB in whole huge pages");
        // The dummy hash made at start gives its memory back at once.
        assert_eq!(recorded.lent.load(SeqCst), 0);
        assert_eq!(recorded.most.load(SeqCst), one);

        // One after another: the thread that holds memory takes each, and keeps it.
        for round in 0..3 {
            let password = Password::parse_given(&format!("une phrase {round}")).unwrap();
            let phc = hasher.hash(password).await.unwrap();
            let again = Password::parse_given(&format!("une phrase {round}")).unwrap();
            assert_eq!(
                hasher.verify(again, Some(phc)).await.unwrap(),
                Verified::Yes { rehash: false }
            );
            assert_eq!(recorded.lent.load(SeqCst), one, "round {round}");
        }
        assert_eq!(
            recorded.loans.load(SeqCst),
            2,
            "the dummy's, then one for six hashes"
        );

        // Held no longer than `hold` after the last hash.
        tokio::time::sleep(hold * 3).await;
        assert_eq!(recorded.lent.load(SeqCst), 0);

        // More at once than threads that hold memory: both threads, two loans, both
        // given back.
        recorded.most.store(0, SeqCst);
        let both = (0..3).map(|i| {
            let hasher = hasher.clone();
            async move {
                hasher
                    .hash(Password::parse_given(&format!("en même temps {i}")).unwrap())
                    .await
                    .unwrap()
            }
        });
        let hashes = futures_util::future::join_all(both).await;
        assert_eq!(hashes.len(), 3);
        assert_eq!(recorded.most.load(SeqCst), 2 * one);
        tokio::time::sleep(hold * 3).await;
        assert_eq!(recorded.lent.load(SeqCst), 0);

        // The threads end with the last hasher, giving back what they hold.
        hasher
            .hash(Password::parse_given("la dernière").unwrap())
            .await
            .unwrap();
        assert_eq!(recorded.lent.load(SeqCst), one);
        drop(hasher);
        for _ in 0..50 {
            if recorded.lent.load(SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(recorded.lent.load(SeqCst), 0);
    }

    #[tokio::test]
    async fn unknown_accounts_never_match_even_the_dummy_password() {
        let hasher = PasswordHasher::new(1).unwrap();
        let given = Password::parse_given("dummy password for unknown accounts").unwrap();
        assert_eq!(hasher.verify(given, None).await.unwrap(), Verified::No);
    }
}
