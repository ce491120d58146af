// The one module the orchestrator worker bundles: every workflow the platform runs.
export { sweepWorkflow, planWorkflow } from './sweep';
export { poolReconcileWorkflow } from './pool-reconcile';
export { nightlyWorkflow } from './nightly';
