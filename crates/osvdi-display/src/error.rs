//! The crate's one error type.

/// What can go wrong in the display engine.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// A rectangle reaches outside the framebuffer.
    #[error("Rectangle {x},{y} {width}x{height} is outside the {fb_width}x{fb_height} framebuffer")]
    OutOfBounds {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        fb_width: u32,
        fb_height: u32,
    },
    /// Pixel data does not have the length its rectangle needs.
    #[error("Pixel data is {actual} bytes, the rectangle needs {expected}")]
    BadLength { expected: usize, actual: usize },
    /// A size the encoder cannot take (zero, odd, or too large).
    #[error("Unsupported frame size {width}x{height}")]
    BadSize { width: u32, height: u32 },
    /// The frame handed to the encoder does not have the size it was configured for.
    #[error("Frame is {actual_width}x{actual_height}, the encoder expects {width}x{height}")]
    SizeMismatch {
        width: u32,
        height: u32,
        actual_width: u32,
        actual_height: u32,
    },
    /// The video encoder library failed.
    #[error("Video encoder failed: {0}")]
    Encoder(String),
}
