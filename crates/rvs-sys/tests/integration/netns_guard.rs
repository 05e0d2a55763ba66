//! The namespace guard deletes its namespace even when the code holding it panics.

use rvs_sys::netns::{Netns, list};

#[test]
fn namespace_is_removed_when_the_test_panics() {
    let mut created = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = Netns::new("rvs-sys-guard").expect("create namespace");
        created = ns.name().to_owned();
        assert!(
            list().unwrap().contains(&created),
            "namespace exists while held"
        );
        ns.spawn_process("sleep", ["30"])
            .expect("start a process inside");
        ns.run(|| panic!("deliberate panic inside the namespace"))
            .unwrap();
    }));
    assert!(result.is_err(), "the closure was expected to panic");
    assert!(created.starts_with("rvs-sys-guard-"), "{created}");
    assert!(
        !list().unwrap().contains(&created),
        "namespace {created} left behind"
    );
}

#[test]
fn names_are_unique_within_a_run() {
    let x = Netns::new("rvs-sys-uniq").unwrap();
    let y = Netns::new("rvs-sys-uniq").unwrap();
    assert_ne!(x.name(), y.name());
    let (nx, ny) = (x.name().to_owned(), y.name().to_owned());
    drop((x, y));
    let names = list().unwrap();
    assert!(!names.contains(&nx) && !names.contains(&ny));
}
