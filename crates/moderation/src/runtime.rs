//! Finding and loading ONNX Runtime (`libonnxruntime.so`) at run time.
//!
//! ort keeps the loaded library and its environment for the whole process
//! (a `OnceLock`): the first library loaded is the one every later session
//! uses, and ONNX Runtime allows one environment per process. So
//! [`Runtime::load`] tries each candidate path in order, says for each why
//! it was not taken, never lets ort look by itself (a bare `ort::init()`
//! without a library panics on first use), and keeps the one runtime it
//! made for the life of the process: a later call gets it back, whatever
//! paths it names (logged when they differ).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// A loaded ONNX Runtime and the environment sessions are made in.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) env: ort::environment::Environment,
    path: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("path", &self.path).finish()
    }
}

/// Where ONNX Runtime was looked for, and why each place failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NotFound {
    pub looked: Vec<(PathBuf, String)>,
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.looked.is_empty() {
            return f.write_str("no path to look at");
        }
        for (i, (path, why)) in self.looked.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {why}", path.display())?;
        }
        Ok(())
    }
}

impl Runtime {
    /// Loads the first candidate that is an ONNX Runtime library ort can use.
    pub fn load(candidates: &[PathBuf]) -> Result<Runtime, NotFound> {
        // The process's one runtime (see the module's comment): ort's own
        // state is process-wide, this only mirrors it.
        static LOADED: Mutex<Option<Runtime>> = Mutex::new(None);
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(runtime) = loaded.as_ref() {
            if !candidates.iter().any(|c| c == &runtime.path) {
                tracing::info!(
                    loaded = %runtime.path.display(),
                    "ONNX Runtime is already loaded in this process; using it"
                );
            }
            return Ok(runtime.clone());
        }
        let mut not_found = NotFound::default();
        for path in candidates {
            match Runtime::load_one(path) {
                Ok(runtime) => {
                    *loaded = Some(runtime.clone());
                    return Ok(runtime);
                }
                Err(why) => not_found.looked.push((path.clone(), why)),
            }
        }
        Err(not_found)
    }

    fn load_one(path: &Path) -> Result<Runtime, String> {
        if !path.is_file() {
            return Err("no such file".to_owned());
        }
        let builder = ort::init_from(path).map_err(|e| e.to_string())?;
        let env = builder
            .with_name("spaces-moderation")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())?;
        tracing::info!(path = %path.display(), "ONNX Runtime loaded");
        Ok(Runtime {
            env,
            path: path.to_owned(),
        })
    }

    /// The library this runtime was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where the project's scripts install ONNX Runtime, relative to a binary in
/// `<target>/<profile>/`: `<target>/onnxruntime/libonnxruntime.so`
/// (scripts/install-onnxruntime.sh).
pub fn default_library_path(exe: &Path) -> Option<PathBuf> {
    let profile_dir = exe.parent()?;
    // Test binaries live one level deeper, in <target>/<profile>/deps/.
    let profile_dir = if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir.parent()?
    } else {
        profile_dir
    };
    Some(
        profile_dir
            .parent()?
            .join("onnxruntime")
            .join(LIBRARY_FILE_NAME),
    )
}

/// The library's file name where the install script puts it.
pub const LIBRARY_FILE_NAME: &str = "libonnxruntime.so";

/// Errors of [`Runtime::load`] as the crate's [`Error`].
impl From<NotFound> for Error {
    fn from(e: NotFound) -> Error {
        Error::Unavailable(e.to_string())
    }
}
