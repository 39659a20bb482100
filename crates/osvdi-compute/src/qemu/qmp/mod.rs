//! QMP, the QEMU Machine Protocol, as a sans-IO engine: bytes in ([`Engine::handle_input`]),
//! bytes to send ([`Engine::poll_transmit`]) and messages out ([`Engine::poll_output`]). The
//! engine answers the greeting with `qmp_capabilities` itself and holds commands back until
//! the server accepted it. The tokio driver is [`client`].
//!
//! A small engine of our own rather than the `qapi` crate: that one generates its types from
//! one QEMU version's schema at build time and logs through `log`; we need a dozen commands.

pub(crate) mod client;

use std::collections::VecDeque;

use serde_json::{Value, json};

/// Longest message accepted: QMP replies of the commands we send are a few kilobytes.
const MAX_LINE: usize = 4 << 20;

/// Something the server said.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// Capabilities negotiated; commands flow. `version` as "7.2.22".
    Connected {
        version: String,
    },
    Reply {
        id: u64,
        result: Result<Value, QmpError>,
    },
    Event(QmpEvent),
}

/// An asynchronous event (`SHUTDOWN`, `STOP`, `MIGRATION`...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QmpEvent {
    pub name: String,
    pub data: Value,
}

/// A command the server refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{desc} ({class})")]
pub(crate) struct QmpError {
    pub class: String,
    pub desc: String,
}

/// The server broke the protocol; the connection is useless after this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("QMP message is not a JSON object: {0}")]
    NotJson(String),
    #[error("QMP message longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("Unexpected QMP message: {0}")]
    Unexpected(String),
    #[error("QEMU refused QMP capabilities negotiation: {0}")]
    Refused(QmpError),
}

#[derive(Debug)]
enum Phase {
    AwaitGreeting,
    Negotiating { id: u64, version: String },
    Ready,
}

#[derive(Debug)]
pub(crate) struct Engine {
    phase: Phase,
    input: Vec<u8>,
    transmit: Vec<u8>,
    held: Vec<(u64, String, Option<Value>)>,
    next_id: u64,
    outputs: VecDeque<Output>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Engine {
            phase: Phase::AwaitGreeting,
            input: Vec::new(),
            transmit: Vec::new(),
            held: Vec::new(),
            next_id: 1,
            outputs: VecDeque::new(),
        }
    }

    /// Queues a command; its reply comes out as [`Output::Reply`] with the returned id.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        match self.phase {
            Phase::Ready => self.encode(id, command, arguments),
            _ => self.held.push((id, command.to_owned(), arguments)),
        }
        id
    }

    fn encode(&mut self, id: u64, command: &str, arguments: Option<Value>) {
        let mut message = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            message["arguments"] = arguments;
        }
        // A `Value` always serialises.
        serde_json::to_writer(&mut self.transmit, &message).expect("JSON value serialises");
        self.transmit.extend_from_slice(b"\r\n");
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.input.extend_from_slice(bytes);
        while let Some(end) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let line = line.trim_ascii();
            if !line.is_empty() {
                self.handle_line(line)?;
            }
        }
        if self.input.len() > MAX_LINE {
            return Err(ProtocolError::TooLong);
        }
        Ok(())
    }

    fn handle_line(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        let shown = || String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        let value: Value =
            serde_json::from_slice(line).map_err(|_| ProtocolError::NotJson(shown()))?;
        let Value::Object(mut message) = value else {
            return Err(ProtocolError::NotJson(shown()));
        };
        if let Some(greeting) = message.get("QMP") {
            let Phase::AwaitGreeting = self.phase else {
                return Err(ProtocolError::Unexpected(shown()));
            };
            let v = &greeting["version"]["qemu"];
            let version = format!("{}.{}.{}", v["major"], v["minor"], v["micro"]);
            let id = self.next_id;
            self.next_id += 1;
            self.encode(id, "qmp_capabilities", None);
            self.phase = Phase::Negotiating { id, version };
            return Ok(());
        }
        if let Some(Value::String(name)) = message.remove("event") {
            let data = message.remove("data").unwrap_or(Value::Null);
            self.outputs
                .push_back(Output::Event(QmpEvent { name, data }));
            return Ok(());
        }
        let id = message
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProtocolError::Unexpected(shown()))?;
        let result = if let Some(value) = message.remove("return") {
            Ok(value)
        } else if let Some(error) = message.get("error") {
            Err(QmpError {
                class: error["class"].as_str().unwrap_or("GenericError").to_owned(),
                desc: error["desc"]
                    .as_str()
                    .unwrap_or("no description")
                    .to_owned(),
            })
        } else {
            return Err(ProtocolError::Unexpected(shown()));
        };
        match &self.phase {
            Phase::Negotiating {
                id: negotiation,
                version,
            } if *negotiation == id => {
                result.map_err(ProtocolError::Refused)?;
                self.outputs.push_back(Output::Connected {
                    version: version.clone(),
                });
                self.phase = Phase::Ready;
                for (id, command, arguments) in std::mem::take(&mut self.held) {
                    self.encode(id, &command, arguments);
                }
            }
            Phase::Ready => self.outputs.push_back(Output::Reply { id, result }),
            _ => return Err(ProtocolError::Unexpected(shown())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &[u8] = br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;

    fn sent(engine: &mut Engine) -> Vec<Value> {
        let bytes = engine.poll_transmit().unwrap_or_default();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn connected() -> Engine {
        let mut engine = Engine::new();
        engine.handle_input(GREETING).unwrap();
        engine.handle_input(b"\r\n").unwrap();
        let negotiation = sent(&mut engine);
        assert_eq!(negotiation[0]["execute"], "qmp_capabilities");
        let id = negotiation[0]["id"].as_u64().unwrap();
        engine
            .handle_input(format!("{{\"return\": {{}}, \"id\": {id}}}\r\n").as_bytes())
            .unwrap();
        assert_eq!(
            engine.poll_output(),
            Some(Output::Connected {
                version: "7.2.22".into()
            })
        );
        engine
    }

    #[test]
    fn commands_wait_for_negotiation() {
        let mut engine = Engine::new();
        let early = engine.execute("query-status", None);
        assert_eq!(engine.poll_transmit(), None);
        engine.handle_input(GREETING).unwrap();
        engine.handle_input(b"\n").unwrap();
        let negotiation = sent(&mut engine);
        assert_eq!(negotiation.len(), 1);
        let id = negotiation[0]["id"].as_u64().unwrap();
        engine
            .handle_input(format!("{{\"return\": {{}}, \"id\": {id}}}\n").as_bytes())
            .unwrap();
        let flushed = sent(&mut engine);
        assert_eq!(
            flushed,
            vec![json!({"execute": "query-status", "id": early})]
        );
    }

    #[test]
    fn replies_events_and_errors_split_anywhere() {
        let mut engine = connected();
        let a = engine.execute("stop", None);
        let b = engine.execute("migrate", Some(json!({"uri": "exec:cat"})));
        assert_eq!(
            sent(&mut engine)[1],
            json!({"execute": "migrate", "id": b, "arguments": {"uri": "exec:cat"}})
        );
        let input = format!(
            "{{\"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}, \"event\": \"STOP\"}}\r\n{{\"return\": {{}}, \"id\": {a}}}\r\n{{\"id\": {b}, \"error\": {{\"class\": \"GenericError\", \"desc\": \"no\"}}}}\r\n"
        );
        for chunk in input.as_bytes().chunks(7) {
            engine.handle_input(chunk).unwrap();
        }
        assert_eq!(
            engine.poll_output(),
            Some(Output::Event(QmpEvent {
                name: "STOP".into(),
                data: Value::Null
            }))
        );
        assert_eq!(
            engine.poll_output(),
            Some(Output::Reply {
                id: a,
                result: Ok(json!({}))
            })
        );
        assert_eq!(
            engine.poll_output(),
            Some(Output::Reply {
                id: b,
                result: Err(QmpError {
                    class: "GenericError".into(),
                    desc: "no".into()
                })
            })
        );
        assert_eq!(engine.poll_output(), None);
    }

    #[test]
    fn protocol_errors() {
        let mut engine = Engine::new();
        assert!(matches!(
            engine.handle_input(b"not json\n"),
            Err(ProtocolError::NotJson(_))
        ));
        let mut engine = Engine::new();
        assert!(matches!(
            engine.handle_input(b"{\"return\": {}, \"id\": 9}\n"),
            Err(ProtocolError::Unexpected(_))
        ));
        let mut engine = connected();
        assert!(matches!(engine.handle_input(GREETING), Ok(())));
        assert!(matches!(
            engine.handle_input(b"\n"),
            Err(ProtocolError::Unexpected(_))
        ));
        let mut engine = Engine::new();
        assert_eq!(
            engine.handle_input(&vec![b' '; MAX_LINE + 1]),
            Err(ProtocolError::TooLong)
        );
        let mut engine = Engine::new();
        engine.handle_input(GREETING).unwrap();
        engine.handle_input(b"\n").unwrap();
        let id = sent(&mut engine)[0]["id"].as_u64().unwrap();
        let refused = format!(
            "{{\"error\": {{\"class\": \"CommandNotFound\", \"desc\": \"x\"}}, \"id\": {id}}}\n"
        );
        assert!(matches!(
            engine.handle_input(refused.as_bytes()),
            Err(ProtocolError::Refused(_))
        ));
    }
}
