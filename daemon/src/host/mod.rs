//! The daemon process: the lock that elects one daemon, the socket, and the connections that
//! feed the dispatcher.

pub mod server;
mod signals;
