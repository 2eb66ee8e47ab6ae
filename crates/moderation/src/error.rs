/// Why moderation could not score.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No ONNX Runtime library could be loaded: moderation is off, chat goes on.
    #[error("ONNX Runtime not loaded: {0}")]
    Unavailable(String),
    /// The model does not load, or is not the one this code reads.
    #[error("moderation model: {0}")]
    Model(String),
    /// ONNX Runtime failed while scoring.
    #[error("inference: {0}")]
    Inference(String),
    /// Every worker is busy and the queue is full: the caller decides
    /// (refuse with "try again", or pass the message unscored).
    #[error("the moderation queue is full")]
    Busy,
    /// The workers have stopped.
    #[error("moderation has stopped")]
    Stopped,
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Error {
        Error::Inference(e.to_string())
    }
}
