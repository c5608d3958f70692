//! The server on a real loopback socket: connection timeouts, the
//! connection cap, late request bodies, and change streams under load and
//! revocation. One test binary, one module per area; timeouts are shortened
//! in each test's `Config`, so the whole binary runs in seconds.

#[path = "net/common.rs"]
mod common;

#[path = "net/connections.rs"]
mod connections;
#[path = "net/streams.rs"]
mod streams;
