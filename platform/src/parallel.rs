//! A small order-keeping parallel map for per-process reads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Map `f` over `items` on a few threads, keeping order. Per-process reads
/// are syscall-bound and independent, and a busy host has thousands.
///
/// An item whose `f` panicked is not dropped: `on_panic` turns it and the
/// panic message into a result (the collectors record it as a process that
/// could not be inspected), and the other items go on.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    on_panic: impl Fn(&T, String) -> R + Sync,
) -> Vec<R> {
    // Below this many items per thread, a thread costs more than it saves.
    const MIN_PER_WORKER: usize = 64;
    // Items are handed out in small batches, not fixed halves: processes
    // differ a lot in cost (a zombie is one read, a worker dozens), and
    // fixed chunks left one thread idle while the other finished its half.
    const BATCH: usize = 16;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
        .min(items.len().div_ceil(MIN_PER_WORKER).max(1));
    let one = |item: &T| match catch_unwind(AssertUnwindSafe(|| f(item))) {
        Ok(r) => r,
        Err(payload) => on_panic(item, panic_message(payload.as_ref())),
    };
    let one = &one;
    let next = AtomicUsize::new(0);
    let next = &next;
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let mut lost: Option<String> = None;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, Ordering::Relaxed);
                        if start >= items.len() {
                            return done;
                        }
                        for (i, item) in items.iter().enumerate().skip(start).take(BATCH) {
                            done.push((i, one(item)));
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        slots[i] = Some(r);
                    }
                }
                // Only `on_panic` itself can get here: its items are
                // recorded below instead of dropped.
                Err(payload) => lost = Some(panic_message(payload.as_ref())),
            }
        }
    });
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| {
            slot.unwrap_or_else(|| {
                on_panic(item, lost.clone().unwrap_or_else(|| "not read".into()))
            })
        })
        .collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("reading it failed unexpectedly (a semleak bug; please report it): {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_item_is_reported_not_dropped() {
        let items: Vec<i32> = (0..300).collect();
        let out = parallel_map(
            &items,
            |&i| {
                if i == 77 {
                    panic!("boom at {i}");
                }
                Ok(i)
            },
            |&i, why| Err((i, why)),
        );
        assert_eq!(out.len(), 300, "nothing dropped");
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v, i as i32),
                Err((pid, why)) => {
                    assert_eq!(*pid, 77);
                    assert!(why.contains("boom at 77"), "{why}");
                }
            }
        }
        assert_eq!(out.iter().filter(|r| r.is_err()).count(), 1);
    }
}
