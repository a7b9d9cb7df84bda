//! A feed task behind a source's stream: the fetching runs as a task of its own, handing events over
//! a bounded channel, so a slow consumer holds the fetch back.

use std::future::Future;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::SourceStream;
use super::formats::{EventSender, ReadError};

/// The stream of a feed task: nothing runs before the stream is first polled (as [`super::Source`]
/// promises: a built source has not touched the network), a failure becomes the stream's last item,
/// and dropping the stream stops the task (it is aborted, wherever it waits).
pub fn spawn_feed<F, Fut>(feed: F) -> SourceStream
where
    F: FnOnce(EventSender) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ReadError>> + Send + 'static,
{
    let mut feed = Some(feed);
    let mut running: Option<(mpsc::Receiver<_>, AbortOnDropHandle<()>)> = None;
    futures::stream::poll_fn(move |cx| {
        let (rx, _task) = running.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(4);
            let feed = feed.take().expect("a feed starts once");
            let task = tokio::spawn(async move {
                let errors = tx.clone();
                if let Err(ReadError::Failed(error)) = feed(tx).await {
                    let _ = errors.send(Err(error)).await;
                }
            });
            (rx, AbortOnDropHandle::new(task))
        });
        rx.poll_recv(cx)
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;
    use crate::sources::SourceEvent;

    /// Sets its flag when dropped: the task's future was dropped (finished or aborted).
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn nothing_runs_before_the_first_poll_and_dropping_the_stream_stops_the_task() {
        let (started, stopped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (s, d) = (Arc::clone(&started), Arc::clone(&stopped));
        let mut stream = spawn_feed(move |tx| async move {
            let _guard = Dropped(d);
            s.store(true, Ordering::SeqCst);
            tx.send(Ok(SourceEvent::Warning("first".into()))).await.ok();
            // A fetch that never ends (a server that stops answering).
            std::future::pending::<()>().await;
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!started.load(Ordering::SeqCst), "opened, not polled: nothing fetched yet");
        assert!(matches!(stream.next().await, Some(Ok(SourceEvent::Warning(_)))));
        assert!(started.load(Ordering::SeqCst));
        drop(stream);
        for _ in 0..100 {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the feed task went on after its stream was dropped");
    }
}
