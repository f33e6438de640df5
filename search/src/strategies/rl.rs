//! MnasNet-style reinforcement learning (Tan et al., CVPR 2019): a controller samples a
//! batch of architectures per generation, each is rewarded with ACC·(LAT/T)^w
//! (`objectives::Reward`, soft or hard constraint), and the controller is trained on the
//! batch by PPO (as MnasNet) or REINFORCE with a moving-average baseline. The controller is
//! the LSTM of Zoph & Le / NASNet / ENAS (see `controller`).
//!
//! Defaults (`RlConfig`): LSTM of 100 units (NASNet, ENAS), baseline decay 0.95 (NASNet),
//! PPO clip 0.2 and 4 epochs per batch (Schulman et al.), entropy weight 1e-4 (ENAS). The
//! learning rate is not NASNet's 0.00035, which served tens of thousands of samples. At
//! 32 × 31 evaluations on the Pixel 3 table (hard constraint, `tests/search_rl.rs`
//! setting, seeds 0 and 1), 0.00035 raised the last generation's mean reward from
//! 0.66/0.63 to only 0.71/0.72 and barely concentrated the choices (share of each gene's
//! most common choice 0.20 → 0.29); 0.002 and 0.005 reached 0.78–0.80 with shares
//! 0.43–0.59; 0.01 concentrated to 0.77–0.83 with no better rewards and a higher risk of
//! locking in a wrong choice (on the toy objective of the `controller` tests it did).
//! 0.005 also suits the README's 50 × 61 budget.

mod controller;

use controller::Controller;

use super::StrategyError;
use super::{Ctx, Strategy};
use crate::config::RlConfig;
use crate::evaluate::Evaluation;
use rand::rngs::StdRng;
use serde_json::Value;
use spaces::{Genome, SearchSpace};

pub struct Reinforce {
    config: RlConfig,
    target_ms: f64,
    cardinalities: Vec<usize>,
    /// Built at generation 0 from that generation's generator.
    controller: Option<Controller>,
}

impl Reinforce {
    pub fn new(config: RlConfig, space: &dyn SearchSpace, target_ms: f64) -> Self {
        let cardinalities = space.genes().iter().map(|g| g.cardinality()).collect();
        Reinforce { config, target_ms, cardinalities, controller: None }
    }

    /// The controller encodes choices as u8 (its settings are checked by `JobConfig::validate`).
    fn check_genes(&self) -> Result<(), StrategyError> {
        if self.cardinalities.iter().any(|&k| k == 0 || k > u8::MAX as usize + 1) {
            return Err(StrategyError::RlGenes);
        }
        Ok(())
    }
}

impl Strategy for Reinforce {
    fn step(&mut self, _generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>, StrategyError> {
        if self.controller.is_none() {
            self.check_genes()?;
            let c = Controller::new(self.cardinalities.clone(), self.config.hidden, rng);
            (ctx.log)(format!(
                "rl: LSTM controller ({} hidden units, {} parameters), {:?}",
                self.config.hidden,
                c.parameter_count(),
                self.config.algorithm
            ));
            self.controller = Some(c);
        }
        let controller = self.controller.as_mut().expect("built above");
        let space = &*ctx.ev.space;
        let batch = controller.sample(ctx.population, rng);
        let genomes: Vec<Genome> = batch
            .actions
            .iter()
            .map(|a| {
                let mut g = Genome(a.clone());
                space.canonicalize(&mut g);
                g
            })
            .collect();
        let mut evals = ctx.ev.evaluate(genomes)?;
        let rewards: Vec<f64> =
            evals.iter().map(|e| self.config.reward.value(e.accuracy, e.latency_ms[0], self.target_ms)).collect();
        for (e, &r) in evals.iter_mut().zip(&rewards) {
            e.objective = Some(r);
        }
        let up = controller.update(&batch.actions, &rewards, &self.config);
        let (_, greedy) = controller.greedy();
        (ctx.log)(format!(
            "rl: mean reward {:.4}, baseline {:.4}, mean max-probability {:.3}, entropy {:.2} nats, most likely \
             architecture now has probability {:.3e}",
            up.mean_reward,
            up.baseline,
            batch.mean_max_probability,
            batch.entropy,
            greedy.iter().product::<f64>()
        ));
        Ok(evals)
    }

    fn state(&self) -> Result<Value, StrategyError> {
        super::save_state(&self.controller)
    }

    fn restore(&mut self, state: Value) -> Result<(), StrategyError> {
        let controller: Option<Controller> = serde_json::from_value(state).map_err(StrategyError::RlState)?;
        if let Some(c) = &controller {
            c.check()?;
            if c.cardinalities() != self.cardinalities || c.hidden() != self.config.hidden {
                return Err(StrategyError::RlShape);
            }
        }
        self.controller = controller;
        Ok(())
    }
}
