//! Background work every instance runs beside the server.

pub mod cleanup;
pub mod heartbeat;
pub mod settings;
