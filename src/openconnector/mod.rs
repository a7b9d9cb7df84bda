//! OpenConnector compatibility: its JSON quirks, its Source `configuration`, and its configuration files
//! (`openapi` + `components`), imported into pipelines and exported back. The facts come from
//! `shared/reference/OPENCONNECTOR.md`; where OpenConnector has a known bug, syncline keeps the meaning
//! users intend and reports it as a [`Notice`].

mod configuration;
pub mod export;
pub mod import;
mod lenient;
pub mod quirks;

pub use export::export;
pub use import::{Imported, import, is_configuration};
pub use quirks::{Notice, normalize_pipeline};
