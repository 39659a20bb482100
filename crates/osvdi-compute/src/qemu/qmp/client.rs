//! The tokio driver of the QMP [`Engine`]: one task per connection owns the socket; commands
//! reach it over a channel and their replies come back on oneshots; events go to one
//! receiver, which closes when the connection ends (QEMU exited, or the backend shut down).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Engine, Output, ProtocolError, QmpError, QmpEvent};

/// Why a command got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QmpFailure {
    #[error("Cannot connect to QMP")]
    Connect(#[source] std::io::Error),
    #[error("QMP connection closed")]
    Closed,
    #[error("QMP did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("QEMU refused {command}: {error}")]
    Refused { command: String, error: QmpError },
}

struct Request {
    command: String,
    arguments: Option<Value>,
    reply: oneshot::Sender<Result<Value, QmpError>>,
}

/// A handle on one QMP connection. Cloning shares the connection.
#[derive(Debug, Clone)]
pub(crate) struct QmpClient {
    requests: mpsc::Sender<Request>,
    timeout: Duration,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl QmpClient {
    /// Connects and negotiates within `timeout`, then leaves the connection to a task on
    /// `tasks` that ends with `cancel`. QEMU serves one QMP client at a time: when another
    /// holds the socket, the greeting never comes and this times out.
    pub async fn connect(
        path: &Path,
        timeout: Duration,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<(QmpClient, mpsc::UnboundedReceiver<QmpEvent>), QmpFailure> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let handshake = async {
            let stream = UnixStream::connect(path)
                .await
                .map_err(QmpFailure::Connect)?;
            let (mut reader, mut writer) = stream.into_split();
            let mut engine = Engine::new();
            let mut buf = vec![0u8; 8192];
            loop {
                flush(&mut engine, &mut writer).await?;
                let n = reader
                    .read(&mut buf)
                    .await
                    .map_err(|_| QmpFailure::Closed)?;
                if n == 0 {
                    return Err(QmpFailure::Closed);
                }
                engine.handle_input(&buf[..n])?;
                let mut connected = false;
                while let Some(output) = engine.poll_output() {
                    match output {
                        Output::Connected { .. } => connected = true,
                        Output::Event(event) => {
                            let _ = events_tx.send(event);
                        }
                        Output::Reply { .. } => {}
                    }
                }
                if connected {
                    return Ok((engine, reader, writer));
                }
            }
        };
        let (engine, reader, writer) = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| QmpFailure::Timeout(timeout))??;
        let (requests, requests_rx) = mpsc::channel(16);
        tasks.spawn(drive(
            engine,
            reader,
            writer,
            requests_rx,
            events_tx,
            cancel,
        ));
        Ok((
            QmpClient {
                requests,
                timeout: Duration::from_secs(30),
            },
            events_rx,
        ))
    }

    /// Runs a command and returns its `return` value.
    pub async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpFailure> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            command: command.to_owned(),
            arguments,
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| QmpFailure::Closed)?;
        match tokio::time::timeout(self.timeout, answer).await {
            Err(_) => Err(QmpFailure::Timeout(self.timeout)),
            Ok(Err(_)) => Err(QmpFailure::Closed),
            Ok(Ok(result)) => result.map_err(|error| QmpFailure::Refused {
                command: command.to_owned(),
                error,
            }),
        }
    }
}

async fn flush(engine: &mut Engine, writer: &mut OwnedWriteHalf) -> Result<(), QmpFailure> {
    while let Some(bytes) = engine.poll_transmit() {
        writer
            .write_all(&bytes)
            .await
            .map_err(|_| QmpFailure::Closed)?;
    }
    Ok(())
}

async fn drive(
    mut engine: Engine,
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    mut requests: mpsc::Receiver<Request>,
    events: mpsc::UnboundedSender<QmpEvent>,
    cancel: CancellationToken,
) {
    let mut pending: HashMap<u64, oneshot::Sender<Result<Value, QmpError>>> = HashMap::new();
    let mut buf = vec![0u8; 8192];
    loop {
        if flush(&mut engine, &mut writer).await.is_err() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            request = requests.recv() => {
                // All handles dropped: nobody can ask anything any more.
                let Some(request) = request else { break };
                let id = engine.execute(&request.command, request.arguments);
                pending.insert(id, request.reply);
            }
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Err(e) = engine.handle_input(&buf[..n]) {
                    tracing::warn!(error = %e, "closing QMP connection");
                    break;
                }
                while let Some(output) = engine.poll_output() {
                    match output {
                        Output::Reply { id, result } => {
                            if let Some(reply) = pending.remove(&id) {
                                let _ = reply.send(result);
                            }
                        }
                        Output::Event(event) => {
                            let _ = events.send(event);
                        }
                        Output::Connected { .. } => {}
                    }
                }
            }
        }
    }
    // Dropping `pending` and `events` tells every waiter the connection is gone.
}
