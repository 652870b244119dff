//! A live "still running" indicator on stderr for queries that take more than a second.
//!
//! Fast queries should not flicker, so nothing is drawn during the first second. The indicator
//! only appears when stderr is a terminal, so scripts and pipes never see `\r` garbage.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const QUIET_PERIOD: Duration = Duration::from_secs(1);
const REDRAW_EVERY: Duration = Duration::from_millis(100);
const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
/// Wide enough to blank out the longest line we draw.
const CLEAR_LINE: &str = "\r                                        \r";

/// Handle to a running indicator; call [`Spinner::stop`] before printing anything.
pub struct Spinner {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    drawn: Arc<AtomicBool>,
}

impl Spinner {
    /// Starts the indicator (a no-op handle when stderr is not a terminal).
    pub fn start() -> Self {
        let drawn = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Self {
                stop: None,
                task: None,
                drawn,
            };
        }
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(animate(stopped, Arc::clone(&drawn)));
        Self {
            stop: Some(stop),
            task: Some(task),
            drawn,
        }
    }

    /// Stops the indicator and waits until its line is cleared. Safe to call more than once.
    pub async fn stop(&mut self) {
        // Dropping the sender wakes the task, which clears its own line before exiting, so the
        // clear cannot race with a redraw.
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Spinner {
    /// When a query is abandoned (Ctrl-C) the handle is dropped without `stop`; abort the
    /// task and clear whatever it left on the line, best effort.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if self.drawn.load(Ordering::SeqCst) {
                let mut stderr = std::io::stderr();
                let _ = write!(stderr, "{CLEAR_LINE}");
                let _ = stderr.flush();
            }
        }
    }
}

async fn animate(mut stopped: oneshot::Receiver<()>, drawn: Arc<AtomicBool>) {
    let started = Instant::now();
    tokio::select! {
        _ = &mut stopped => return,
        _ = tokio::time::sleep(QUIET_PERIOD) => {}
    }
    let mut stderr = std::io::stderr();
    for frame in FRAMES.iter().cycle() {
        let seconds = started.elapsed().as_secs_f64();
        let _ = write!(stderr, "\r{frame} running... {seconds:.1} s");
        let _ = stderr.flush();
        drawn.store(true, Ordering::SeqCst);
        tokio::select! {
            _ = &mut stopped => break,
            _ = tokio::time::sleep(REDRAW_EVERY) => {}
        }
    }
    let _ = write!(stderr, "{CLEAR_LINE}");
    let _ = stderr.flush();
}
