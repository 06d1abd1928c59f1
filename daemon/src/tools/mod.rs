//! The tools buildd puts between cargo and the compiler: the linker choice and its wrapper,
//! and sccache (detection, its server, its statistics).
//!
//! Which tools a workspace uses is decided above, in `dispatch::tools`.

pub(crate) mod linker;
pub(crate) mod sccache;
