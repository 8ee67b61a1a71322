//! A small order-keeping parallel map for per-process reads.

use std::panic::{catch_unwind, AssertUnwindSafe};

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
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let chunk = items.len().div_ceil(workers).max(64);
    let one = |item: &T| match catch_unwind(AssertUnwindSafe(|| f(item))) {
        Ok(r) => r,
        Err(payload) => on_panic(item, panic_message(payload.as_ref())),
    };
    let one = &one;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                (
                    part,
                    scope.spawn(move || part.iter().map(one).collect::<Vec<_>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(part, h)| {
                h.join().unwrap_or_else(|payload| {
                    // Only `on_panic` itself can get here.
                    let why = panic_message(payload.as_ref());
                    part.iter()
                        .map(|item| on_panic(item, why.clone()))
                        .collect()
                })
            })
            .collect()
    })
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
