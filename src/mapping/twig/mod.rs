//! Twig 3, as OpenConnector's mappings are written in it, on top of minijinja. A template is read by a
//! Twig lexer and parser ([`lex`], [`parse`]) and written out as a minijinja template ([`emit`]) that
//! calls the Twig runtime ([`runtime`]) wherever the two languages differ, so a template prints what
//! Twig prints: PHP's truthiness, comparisons and arithmetic, `elseif`, `??`, `?:` and `? :`, Twig's
//! tests and filters, inclusive ranges, `for` over hashes, arrow functions, string interpolation, and
//! variables that outlive the loop that set them. A construct of Twig that syncline does not run is
//! refused when the mapping is compiled (so by `syncline validate`), naming it, never run differently.

mod date;
mod emit;
mod expr;
mod lex;
mod parse;
pub mod plan;
mod runtime;

use minijinja::Environment;

pub use date::{Zone, format_php, parse_date, slugify, utc_zone};
pub use runtime::budget::{Render, begin as begin_render};
pub use runtime::{is_empty, to_php_string, truthy};

/// A template Twig would refuse, or that uses a construct syncline does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwigError {
    #[error("syntax error at byte {at}: {message}")]
    Syntax { at: usize, message: String },
    #[error("{what} is not supported (see README: Mappings, Twig 3)")]
    Unsupported { at: usize, what: String },
}

impl TwigError {
    pub fn syntax(at: usize, message: impl Into<String>) -> TwigError {
        TwigError::Syntax { at, message: message.into() }
    }

    pub fn unsupported(at: usize, what: impl Into<String>) -> TwigError {
        TwigError::Unsupported { at, what: what.into() }
    }
}

/// A Twig template as it is translated.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The minijinja template.
    pub source: String,
    /// Whether it reads any variable (a template that does not needs no record as its context).
    pub reads_context: bool,
}

/// Translates a Twig template into a minijinja template for an environment with [`install`]ed.
pub fn translate(source: &str) -> Result<Translated, TwigError> {
    let nodes = parse::parse(lex::lex(source)?)?;
    let (source, reads_context) = emit::emit(&nodes)?;
    Ok(Translated { source, reads_context })
}

/// Registers the Twig runtime (every `tw_*` function, filter and test) and OpenConnector's functions
/// (`generateUuid`) on `env`; the `raw` filter marks a value safe, as Twig's does.
pub fn install(env: &mut Environment<'static>) {
    runtime::install(env);
    // Twig's `raw` marks a value safe, so autoescape leaves it alone and the decode after rendering
    // turns its entities into characters.
    env.add_filter("raw", |v: minijinja::Value| {
        if v.kind() == minijinja::value::ValueKind::String { minijinja::Value::from_safe_string(v.to_string()) } else { v }
    });
    env.add_function("generateUuid", || uuid::Uuid::new_v4().to_string());
}

/// The filters a template may use, for error messages and documentation.
pub fn supported_filters() -> impl Iterator<Item = &'static str> {
    emit::FILTERS.iter().map(|(name, _)| *name)
}
