//! Lead scoring rules: create, edit and delete them, recomputing the
//! `lead_score` of every contact with events of the types involved.

use sift_lang::DateTime;

use super::*;
use crate::error::Error;
use crate::scoring::{ScoringRule, ScoringRuleInput, ScoringRulePatch};

impl Workspace {
    pub fn scoring_rules(&self) -> &[ScoringRule] {
        todo!("issue 3")
    }

    pub fn scoring_rule(&self, id: &str) -> Option<&ScoringRule> {
        let _ = id;
        todo!("issue 3")
    }

    /// Creates a rule and scores past events with it. `Write::rescored`
    /// counts the contacts whose score changed.
    pub fn create_scoring_rule(
        &mut self,
        input: ScoringRuleInput,
        now: DateTime,
    ) -> Result<Write, Error> {
        let _ = (input, now);
        todo!("issue 3")
    }

    pub fn update_scoring_rule(
        &mut self,
        id: &str,
        patch: ScoringRulePatch,
        now: DateTime,
    ) -> Result<Write, Error> {
        let _ = (id, patch, now);
        todo!("issue 3")
    }

    pub fn delete_scoring_rule(&mut self, id: &str, now: DateTime) -> Result<Write, Error> {
        let _ = (id, now);
        todo!("issue 3")
    }
}
