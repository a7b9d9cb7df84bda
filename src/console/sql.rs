//! The console's query page: a read-only SQL query over the state (`crate::sql`), its answer as a
//! table. A GET form, so a query is a link one can keep; the same limits as `POST /api/sql`, tighter
//! on rows (a page is for reading).

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConsoleError;
use super::pages;
use super::session::SignedIn;
use crate::service::Shared;

#[derive(Deserialize, Default)]
pub struct SqlQuery {
    #[serde(default)]
    q: String,
}

/// Rows a page shows, at most.
#[cfg(feature = "sql")]
const ROWS: usize = 500;

async fn result_of(shared: &Shared, q: &str) -> Value {
    if q.trim().is_empty() {
        return json!({});
    }
    answer(shared, q).await
}

#[cfg(feature = "sql")]
async fn answer(shared: &Shared, q: &str) -> Value {
    let limits = crate::sql::Limits { rows: ROWS, time: std::time::Duration::from_secs(30), ..Default::default() };
    match crate::sql::query(&shared.state, q, limits).await {
        Ok(answer) => {
            let columns: Vec<String> = answer.schema.fields().iter().map(|f| f.name().clone()).collect();
            let rows: Vec<Vec<Value>> = match answer.json_rows() {
                Ok(rows) => {
                    rows.into_iter().map(|mut row| columns.iter().map(|c| row.remove(c).unwrap_or(Value::Null)).collect()).collect()
                }
                Err(error) => return json!({ "error": error.to_string() }),
            };
            json!({ "columns": columns, "rows": rows, "truncated": answer.truncated, "limit": ROWS })
        }
        Err(error) => json!({ "error": error.to_string() }),
    }
}

#[cfg(not(feature = "sql"))]
async fn answer(_: &Shared, _: &str) -> Value {
    json!({ "error": "this build of syncline has no SQL (it was built without the `sql` feature)" })
}

pub async fn page(State(shared): State<Shared>, signed: SignedIn, Query(query): Query<SqlQuery>) -> Result<Response, ConsoleError> {
    let result = result_of(&shared, &query.q).await;
    pages::page("sql.html", &signed, "sql", json!({ "title": "SQL", "q": query.q, "result": result }))
}
