//! A poisoned key map (a panic while it was held) must not make keys
//! half-added or revocations half-done.

use super::*;

fn poison<T: Send + Sync>(lock: &RwLock<T>) {
    std::thread::scope(|scope| {
        let _ = scope
            .spawn(|| {
                let _held = lock.write();
                panic!("poisoning the lock on purpose");
            })
            .join();
    });
    assert!(lock.is_poisoned());
}

#[test]
fn keys_are_added_and_revoked_through_a_poisoned_lock() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(Config::new(dir.path(), None)).unwrap();
    let (workspace, first) = state.create_workspace("Shop").unwrap();
    poison(&state.keys);
    poison(&state.workspaces);

    let added = state.add_key(&workspace).unwrap();
    assert!(state.workspace_for_key(&added).is_some());
    assert!(state.revoke_key(&workspace, &first).unwrap());
    assert!(state.workspace_for_key(&first).is_none());
    assert_eq!(state.workspace_rows().len(), 1);
    state.close();
}
