//! Records handed to a run instead of read (an inbound hook's object): the synchronization's own
//! source still says where ids are, and the run treats them as an incremental read, so nothing else
//! is deleted.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::{Chunk, RawRecord, Source, SourceError, SourceEvent, SourceStream};

pub struct Pushed {
    /// The synchronization's source: never opened, asked only where ids are.
    pub source: Box<dyn Source>,
    pub records: Arc<Vec<RawRecord>>,
    /// Where the records came from, for messages.
    pub origin: String,
}

impl Source for Pushed {
    fn open(&self, _cursor: Option<String>) -> SourceStream {
        let events = vec![
            Ok(SourceEvent::Incremental(format!("{} record(s) pushed", self.records.len()))),
            Ok(SourceEvent::Chunk(Chunk::new(self.records.as_ref().clone(), self.origin.clone()))),
        ];
        futures::stream::iter(events).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async { Ok("records pushed to the run".to_string()) }.boxed()
    }

    fn id_position(&self) -> BoxFuture<'_, Result<Option<String>, SourceError>> {
        self.source.id_position()
    }
}
