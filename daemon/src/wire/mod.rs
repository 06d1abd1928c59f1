//! The client protocol: every message that crosses the socket, and the client that speaks it.
//!
//! Below everything but `home`: the engine's types become wire types here and nowhere else.

pub mod client;
pub mod protocol;
pub mod roots;
pub mod stamped;
pub(crate) mod status;
