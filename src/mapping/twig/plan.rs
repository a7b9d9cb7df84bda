//! Templates that only print text and values, each value read at a dot path (or written as a string)
//! and passed through a few common filters: `"{{ name }} ({{ category.name|lower }})"`,
//! `'{{ updated_at|date("Y-m-d") }}'`. Those are most of what OpenConnector mappings are, and they need
//! no template engine: the mapping prints them piece by piece, calling the very filter functions the
//! engine calls, so both print the same bytes (a differential test in `mapping::template` holds them
//! to it). Anything else, and any value or filter error, goes to the engine.

use minijinja::Error;
use minijinja::value::Value;

use super::date::date_filter;
use super::emit::is_identifier;
use super::parse::{Arg, Expr, Node};
use super::runtime::filters;

/// One piece of a plain template.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Text printed as it is (template text, or a string literal printed without filters).
    Text(String),
    /// A value printed as Twig prints it, after its filters.
    Print { source: Source, filters: Vec<(Filter, Vec<Value>)> },
}

/// Where a printed value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `a.b.c`: names only.
    Path(Vec<String>),
    /// `"now"`.
    Literal(String),
}

/// A filter a plain template may use, with the literal arguments it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Capitalize,
    Date,
    Default,
    Lower,
    Title,
    Trim,
    Upper,
}

impl Filter {
    fn named(name: &str, args: usize) -> Option<Filter> {
        let (filter, max_args) = match name {
            "capitalize" => (Filter::Capitalize, 0),
            "date" => (Filter::Date, 2),
            "default" => (Filter::Default, 1),
            "lower" => (Filter::Lower, 0),
            "title" => (Filter::Title, 0),
            "trim" => (Filter::Trim, 2),
            "upper" => (Filter::Upper, 0),
            _ => return None,
        };
        (args <= max_args).then_some(filter)
    }

    /// The filter applied to `value`, as the template's `tw_<name>` call applies it.
    pub fn apply(self, value: Value, args: &[Value]) -> Result<Value, Error> {
        let arg = |i: usize| args.get(i).cloned();
        Ok(match self {
            Filter::Capitalize => Value::from(filters::capitalize(value)?),
            Filter::Date => Value::from(date_filter(value, arg(0), arg(1))?),
            Filter::Default => filters::default(value, arg(0)),
            Filter::Lower => Value::from(filters::lower(value)?),
            Filter::Title => Value::from(filters::title(value)?),
            Filter::Trim => Value::from(filters::trim(value, arg(0), arg(1))?),
            Filter::Upper => Value::from(filters::upper(value)?),
        })
    }
}

/// The pieces of `source` when it is a plain template, else `None` (also for one that does not parse:
/// the engine reports that).
pub fn plain(source: &str) -> Option<Vec<Piece>> {
    let nodes = super::parse::parse(super::lex::lex(source).ok()?).ok()?;
    let mut pieces = Vec::with_capacity(nodes.len());
    for node in nodes {
        pieces.push(match node {
            Node::Text(text) => Piece::Text(text),
            Node::Print(expr) => printed(&expr)?,
            _ => return None,
        });
    }
    Some(pieces)
}

fn printed(expr: &Expr) -> Option<Piece> {
    let mut chain = Vec::new();
    let mut input = expr;
    while let Expr::Filter { input: inner, name, args } = input {
        let filter = Filter::named(name, args.len())?;
        chain.push((filter, args.iter().map(literal).collect::<Option<Vec<_>>>()?));
        input = inner;
    }
    chain.reverse();
    let source = match input {
        // A string printed as it is, unescaped (Twig treats a constant as safe).
        Expr::Str(text) if chain.is_empty() => return Some(Piece::Text(text.clone())),
        Expr::Str(text) => Source::Literal(text.clone()),
        other => Source::Path(path(other)?),
    };
    Some(Piece::Print { source, filters: chain })
}

fn literal(arg: &Arg) -> Option<Value> {
    match (&arg.name, &arg.value) {
        (None, Expr::Str(text)) => Some(Value::from(text.as_str())),
        _ => None,
    }
}

/// `a.b.c` as its names: variables the record gives, attributes by identifier.
fn path(expr: &Expr) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut here = expr;
    loop {
        match here {
            Expr::Attr { object, key, call: None } => match &**key {
                Expr::Str(name) if is_identifier(name) => {
                    names.push(name.clone());
                    here = object;
                }
                _ => return None,
            },
            Expr::Name(name) if is_identifier(name) && !matches!(name.as_str(), "loop" | "_self" | "_context" | "_charset") => {
                names.push(name.clone());
                names.reverse();
                return Some(names);
            }
            _ => return None,
        }
    }
}
