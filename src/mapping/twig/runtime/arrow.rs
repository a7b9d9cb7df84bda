//! Twig's arrow functions (`(a, b) => a.x <=> b.x`) as the runtime runs them: each body compiled
//! once per distinct source, run with fuel of its own and charged to its caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Object, Value};
use minijinja::{Environment, Error, State};

use super::{array, error};

/// An arrow function: its body (compiled once per distinct source), parameter names, and the values
/// it read from the template around it.
#[derive(Debug)]
pub struct Arrow {
    params: Vec<String>,
    expression: Arc<minijinja::Expression<'static, 'static>>,
    captures: Value,
}

impl Object for Arrow {}

impl Arrow {
    pub fn new(params: Vec<String>, source: &str, captures: Value) -> Result<Arrow, Error> {
        Ok(Arrow { params, expression: arrow_expression(source)?, captures })
    }
}

/// What the arrow body that just ran on this thread took (its last call, `tw_spent`, says).
pub fn record_spent(fuel: u64) {
    SPENT.with(|spent| spent.set(fuel));
}

thread_local! {
    /// The fuel the arrow body that just ran on this thread took (set by `tw_spent`).
    static SPENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The environment arrow bodies are compiled in: the runtime alone. An arrow runs with fuel of its
/// own (one call cannot run away) and what it took is charged to its caller's.
fn arrow_environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_fuel(Some(crate::limits::TemplateLimits::default().template_fuel));
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        super::super::install(&mut env);
        env
    })
}

type Compiled = Arc<minijinja::Expression<'static, 'static>>;

fn arrow_expression(source: &str) -> Result<Compiled, Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Compiled>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(source) {
        return Ok(Arc::clone(found));
    }
    let compiled = Arc::new(arrow_environment().compile_expression_owned(source.to_string())?);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    // Arrow bodies come from mapping definitions: a bounded set, but bounded here too.
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(source.to_string(), Arc::clone(&compiled));
    Ok(compiled)
}

/// Calls an arrow function with `args` (extra ones dropped, missing ones null), charging what it
/// took to the caller's `state`.
pub fn call_arrow(state: &State, arrow: &Value, args: &[Value]) -> Result<Value, Error> {
    let arrow = arrow.downcast_object_ref::<Arrow>().ok_or_else(|| error("the argument must be an arrow function"))?;
    let mut context = indexmap::IndexMap::new();
    if let Some(captured) = array(&arrow.captures) {
        for (k, v) in captured {
            context.insert(k, v);
        }
    }
    for (i, param) in arrow.params.iter().enumerate() {
        context.insert(Value::from(param.as_str()), args.get(i).cloned().unwrap_or(Value::from(())));
    }
    SPENT.with(|spent| spent.set(0));
    let result = arrow.expression.eval(Value::from_object(context))?;
    state.consume_fuel(1 + SPENT.with(std::cell::Cell::take))?;
    Ok(result)
}
