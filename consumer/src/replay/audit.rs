//! Storing the round's audit record in the downstream and loading the newest back at start
//! (see [`crate::audit`]). Neither ever fails a round: a problem is logged as a warning.

use super::Replayer;
use crate::audit::ROUNDS_IN_MEMORY;
use crate::freshness::RoundRecord;

impl Replayer {
    /// Stores `rec` in the downstream, keeping the newest `--keep-rounds`.
    pub(super) async fn save_round(&mut self, rec: &RoundRecord) {
        if let Err(e) = self.down.save_round(rec, self.keep_rounds).await {
            let e = self.secrets.redact(&e.to_string()).into_owned();
            tracing::warn!(round = rec.round, error = %e, "storing the round record failed");
        }
    }

    /// Loads the newest stored round records into `/health`'s list.
    pub(super) async fn load_rounds(&mut self) {
        match self.down.load_rounds(ROUNDS_IN_MEMORY).await {
            Ok(rounds) => {
                if let Ok(mut h) = self.health.lock() {
                    for r in rounds {
                        h.push_round(r);
                    }
                }
            }
            Err(e) => {
                let e = self.secrets.redact(&e.to_string()).into_owned();
                tracing::warn!(error = %e, "loading the stored round records failed");
            }
        }
    }
}
