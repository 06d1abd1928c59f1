//! The daemon process: the lock that elects one daemon, the socket, and the connections that
//! feed the dispatcher.

mod limits;
mod lines;
pub mod server;
mod signals;
