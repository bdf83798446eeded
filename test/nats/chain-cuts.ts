/**
 * The writes of a regression's chain, from the detection to the training config's pause, each as the
 * cutting proxy recognizes it (test/harness/cutting-proxy.ts): the subject it is published on, and a piece
 * of its body.
 */
export interface ChainCut {
  readonly what: string;
  readonly subject: (prefix: string) => string;
  readonly text: string;
}

export function chainCuts(model: string): ChainCut[] {
  return [
    {
      what: "the detection's write",
      subject: (p) => `$KV.${p}_actors.model.${model}`,
      text: '"rollingBack"',
    },
    {
      what: "the registry's rollback",
      subject: (p) => `$KV.${p}_registry.${model}`,
      text: '"rollback_id":"',
    },
    {
      what: "the rollback result's write",
      subject: (p) => `$KV.${p}_actors.model.${model}`,
      text: '"rolledBack"',
    },
    {
      what: 'the rollback event (its publication)',
      subject: (p) => `${p}.evt.promotion_rolled_back.${model}`,
      text: '"rollback_id"',
    },
    {
      what: "the training config's pause",
      subject: (p) => `$KV.${p}_actors.training.${model}`,
      text: '"paused"',
    },
  ];
}
