//! A small tokio driver: owns the stream and a [`Client`], writes what the client transmits
//! and reads until the next event.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Client, Event, Output, ProtocolError};

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("VNC connection failed")]
    Io(#[from] std::io::Error),
    #[error("VNC server closed the connection")]
    Closed,
    #[error("VNC protocol error")]
    Protocol(#[source] ProtocolError),
}

#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    client: Client,
    events: VecDeque<Event>,
    buf: Box<[u8]>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, client: Client) -> Self {
        Self {
            stream,
            client,
            events: VecDeque::new(),
            buf: vec![0; 64 << 10].into_boxed_slice(),
        }
    }

    /// The engine, to make requests (sent at the next [`Self::flush`] or
    /// [`Self::next_event`]).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Writes out everything the client has to send; events are kept for
    /// [`Self::next_event`].
    pub async fn flush(&mut self) -> Result<(), DriveError> {
        while let Some(out) = self.client.poll_output() {
            match out {
                Output::Transmit(bytes) => self.stream.write_all(&bytes).await?,
                Output::Event(e) => self.events.push_back(e),
            }
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Sends what is queued, then reads until the client has an event.
    /// [`Event::Error`] comes back as [`DriveError::Protocol`].
    pub async fn next_event(&mut self) -> Result<Event, DriveError> {
        loop {
            self.flush().await?;
            if let Some(e) = self.events.pop_front() {
                return match e {
                    Event::Error(e) => Err(DriveError::Protocol(e)),
                    e => Ok(e),
                };
            }
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                return Err(DriveError::Closed);
            }
            self.client.handle_input(&self.buf[..n]);
        }
    }
}
