//! (1) What the caller asks for, and the rules it must obey.
pub mod args;
pub mod check;
