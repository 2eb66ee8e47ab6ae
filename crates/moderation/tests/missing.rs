//! Without a library, loading says where it looked and why (its own test
//! binary: once ONNX Runtime is loaded, a process keeps it).

use std::path::PathBuf;

use spaces_moderation::{Error, Runtime};

#[test]
fn a_missing_library_is_an_error_naming_every_place_looked() {
    let dir = std::env::temp_dir();
    let not_a_library = dir.join(format!("spaces-moderation-test-{}.so", std::process::id()));
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    let missing = PathBuf::from("/nonexistent/libonnxruntime.so");
    let not_found = Runtime::load(&[missing.clone(), not_a_library.clone()]).unwrap_err();
    std::fs::remove_file(&not_a_library).unwrap();
    assert_eq!(not_found.looked.len(), 2);
    assert_eq!(not_found.looked[0], (missing, "no such file".to_owned()));
    assert_eq!(not_found.looked[1].0, not_a_library);
    assert!(
        not_found.looked[1].1.contains("failed to load"),
        "{}",
        not_found.looked[1].1
    );
    let message = Error::from(not_found).to_string();
    assert!(
        message.contains("/nonexistent/libonnxruntime.so: no such file"),
        "{message}"
    );
}
