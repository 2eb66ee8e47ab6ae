//! `protocol` is pure (STYLE.md, Boundaries): no runtime, storage, network,
//! HTTP or search crate may enter its dependency tree.

use std::process::Command;

const FORBIDDEN: [&str; 6] = ["tokio", "sled", "libp2p", "axum", "tantivy", "iroh"];

#[test]
fn protocol_depends_on_no_io_crates() {
    let output = Command::new(env!("CARGO"))
        // Host target only: `--target all` would need every platform's crates
        // downloaded, which `--offline` cannot do.
        .args([
            "tree",
            "--offline",
            "-p",
            "spaces-protocol",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // The tree is real: the crate and its direct dependencies are in it.
    for expected in [
        "spaces-protocol",
        "blake3",
        "ed25519-dalek",
        "postcard",
        "imbl",
    ] {
        assert!(
            crates.contains(&expected),
            "{expected} missing from:\n{tree}"
        );
    }
    for name in crates {
        for forbidden in FORBIDDEN {
            assert!(
                !(name == forbidden || name.starts_with(&format!("{forbidden}-"))),
                "protocol depends on {name}:\n{tree}"
            );
        }
    }
}
