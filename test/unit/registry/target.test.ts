// Target.clone: the admin API's dry runs predict a change on a copy, so the copy must carry every
// piece of the live target's state, and changing it must leave the live target alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Target } from '../../../src/registry/target.js';

const THRESHOLDS = { healthyThreshold: 2, unhealthyThreshold: 2 };

test('clone copies every field and shares nothing mutable', () => {
  const live = new Target({ id: 'a', host: '127.0.0.1', port: 9001, weight: 3 }, THRESHOLDS);
  live.health.force('unhealthy', 'Target.Timeout', 'no answer in 1 s');
  Object.assign(live, {
    outstanding: 4,
    connections: 5,
    remoteOutstanding: 2,
    adminDisabled: true,
    draining: true,
    drainingSince: 1000,
    ejectedUntil: 2000,
    ejectionCount: 3,
    slowStartFactor: 0.5,
    slowStartBegin: 500,
    grayFactor: 0.25,
    detail: 'something',
  });
  live.recomputeWeight();
  live.refreshState(1500);

  const copy = live.clone(THRESHOLDS);
  const { health, history, ...fields } = live;
  const { health: copyHealth, history: copyHistory, ...copyFields } = copy;
  assert.deepEqual(copyFields, fields);
  assert.deepEqual(copyHistory, history);
  assert.equal(copyHealth.state, health.state);
  assert.equal(copyHealth.reason, health.reason);

  copy.draining = false;
  copy.health.force('healthy', 'Target.Healthy');
  copy.history.push({ at: 0, from: 'initial', to: 'healthy', reason: 'Target.Healthy' });
  assert.equal(live.draining, true);
  assert.equal(live.health.state, 'unhealthy');
  assert.notEqual(live.history.length, copy.history.length);
});
