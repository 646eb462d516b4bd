import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import React from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { ModelVersion, PredictAnswer, Serve, ServeState } from '../src/client';
import {
  CURL_SHOWN_CHARS,
  DEFAULT_REQUEST,
  ModelServePanel,
  PanelActions,
  curlCommand
} from '../src/components';
import { ServeDetails, Snapshot, serveKey } from '../src/model';

afterEach(cleanup);

function aVersion(name: string, version: number): ModelVersion {
  return {
    name,
    version,
    id: `${name}-${version}`,
    userId: '',
    experimentId: '',
    modelType: 'tensorflow',
    currentStage: 'None',
    source: `/artifacts/${name}/${version}`,
    dataset: null,
    description: null,
    tags: [],
    creationTime: '2026-01-01T00:00:00Z',
    lastUpdatedTime: '2026-01-01T00:00:00Z'
  };
}

function aServe(name: string, version: number, state: ServeState, reason: string | null = null): Serve {
  return {
    modelName: name,
    modelVersion: version,
    state,
    reason,
    url: `http://127.0.0.1:9000/v1/models/${name}/versions/${version}:predict`,
    backend: 'local',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    proxyUrl: `http://127.0.0.1:8888/modelserve/v1/models/${name}/versions/${version}:predict`
  };
}

/** simple with versions 3, 2, 1 (the model sorts them newest first), served as asked. */
function snapshotWith(serves: Serve[], details: Record<number, ServeDetails> = {}): Snapshot {
  return {
    models: [{ name: 'simple', versions: [3, 2, 1].map(v => aVersion('simple', v)) }],
    serves: new Map(serves.map(s => [serveKey(s.modelName, s.modelVersion), s])),
    details: new Map(Object.entries(details).map(([v, d]) => [serveKey('simple', Number(v)), d]))
  };
}

/** What GET one says of a two-input model that served 12 requests, 1 of them refused. */
function twoInputDetails(): ServeDetails {
  return {
    signature: {
      name: 'serving_default',
      method: 'tensorflow/serving/predict',
      inputs: [
        { name: 'pixels', dtype: 'float', shape: [-1, 28, 28] },
        { name: 'label_hint', dtype: 'int64', shape: null }
      ],
      outputs: [{ name: 'scores', dtype: 'float', shape: [-1, 10] }]
    },
    exampleRequest: { instances: [{ pixels: [[0.0, 0.0]], label_hint: 0 }] },
    metrics: { requestCount: 12, errorCount: 1, latencyP50Ms: 0.4213, latencyP99Ms: 123.4 },
    error: null
  };
}

function recordingActions(predictAnswer?: PredictAnswer): PanelActions & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    refresh: () => calls.push('refresh'),
    serve: (name, version) => calls.push(`serve ${name} ${version}`),
    stop: (name, version) => calls.push(`stop ${name} ${version}`),
    logs: async (name, version) => {
      calls.push(`logs ${name} ${version}`);
      return ['first line', 'second line'];
    },
    predict: async (name, version, proxyUrl, body) => {
      calls.push(`predict ${name} ${version} ${proxyUrl} ${body}`);
      return predictAnswer ?? { ok: true, status: 200, text: '{"predictions": [2.5]}', error: null };
    },
    copy: text => calls.push(`copy ${text}`)
  };
}

function row(version: number): HTMLElement {
  const found = document.querySelector<HTMLElement>(
    `.jp-ModelServe-version[data-model="simple"][data-version="${version}"]`
  );
  if (!found) {
    throw new Error(`no row for simple ${version}`);
  }
  return found;
}

function badge(version: number): HTMLElement {
  return row(version).querySelector<HTMLElement>('.jp-ModelServe-badge')!;
}

describe('ModelServePanel', () => {
  it('shows each model as a labelled group, its versions in the order given', () => {
    // Given a snapshot with simple 1..3
    // When the panel renders
    render(<ModelServePanel snapshot={snapshotWith([])} error={null} actions={recordingActions()} />);
    // Then simple is a group and its rows go 3, 2, 1
    const group = screen.getByRole('group', { name: 'simple' });
    const versions = [...group.querySelectorAll('.jp-ModelServe-version')].map(el =>
      el.getAttribute('data-version')
    );
    expect(versions).toEqual(['3', '2', '1']);
  });

  it.each<[ServeState, string | null, boolean, boolean]>([
    ['PENDING', null, false, true],
    ['LOADING', null, false, true],
    ['AVAILABLE', null, false, true],
    ['FAILED', 'saved_model.pb is corrupt', true, true],
    ['DELETING', null, false, true]
  ])('renders a %s serve with its badge and buttons', (state, reason, canServe, canStop) => {
    // Given simple 1 in this state
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, state, reason)])}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then the badge says the state, and Serve/Stop are there as the state allows
    expect(badge(1).getAttribute('data-state')).toBe(state);
    expect(badge(1).textContent).toBe(state);
    const buttons = within(row(1));
    expect(buttons.queryByRole('button', { name: 'Serve simple version 1' }) !== null).toBe(canServe);
    expect(buttons.queryByRole('button', { name: 'Stop simple version 1' }) !== null).toBe(canStop);
  });

  it('shows a FAILED serve’s reason on hover and in a details row', () => {
    // Given a serve that failed with a reason
    const reason = 'Could not load simple version 1: saved_model.pb is corrupt';
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'FAILED', reason)])}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then the reason is the badge's title and the details' text
    expect(badge(1).title).toBe(reason);
    expect(row(1).querySelector('.jp-ModelServe-reason')!.textContent).toContain(reason);
  });

  it('marks an unserved version NONE, "not served", with only a Serve button', async () => {
    // Given nothing served
    const actions = recordingActions();
    render(<ModelServePanel snapshot={snapshotWith([])} error={null} actions={actions} />);
    // Then the badge says so and no endpoint, Try it or logs are shown
    expect(badge(2).getAttribute('data-state')).toBe('NONE');
    expect(badge(2).textContent).toBe('not served');
    expect(within(row(2)).queryByRole('button', { name: 'Stop simple version 2' })).toBeNull();
    expect(within(row(2)).queryByRole('textbox')).toBeNull();
    expect(within(row(2)).queryByRole('button', { name: 'Show logs of simple version 2' })).toBeNull();
    // When Serve is pressed
    fireEvent.click(screen.getByRole('button', { name: 'Serve simple version 2' }));
    // Then the action names the version
    expect(actions.calls).toEqual(['serve simple 2']);
  });

  it('offers Try it only when the serve is AVAILABLE', () => {
    // Given version 1 AVAILABLE and version 2 LOADING
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE'), aServe('simple', 2, 'LOADING')])}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then only version 1 has the request box, prefilled, and its Predict button
    const request = screen.getByRole('textbox', { name: 'Request for simple version 1' });
    expect((request as HTMLTextAreaElement).value).toBe(DEFAULT_REQUEST);
    expect(screen.getByRole('button', { name: 'Predict with simple version 1' })).toBeTruthy();
    expect(screen.queryByRole('textbox', { name: 'Request for simple version 2' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Predict with simple version 2' })).toBeNull();
  });

  it('posts Try it’s request to the proxy URL and shows the answer as TF Serving wrote it', async () => {
    // Given an AVAILABLE serve whose model answers predictions
    const actions = recordingActions({
      ok: true,
      status: 200,
      text: '{"predictions": [2.5, 3.0, 4.5]}',
      error: null
    });
    const available = aServe('simple', 1, 'AVAILABLE');
    render(<ModelServePanel snapshot={snapshotWith([available])} error={null} actions={actions} />);
    // When Predict is pressed
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Predict with simple version 1' }));
    });
    // Then the request went to proxyUrl and the output shows 3.0 as 3.0
    expect(actions.calls).toEqual([`predict simple 1 ${available.proxyUrl} ${DEFAULT_REQUEST}`]);
    const output = screen.getByRole('status', { name: 'Prediction of simple version 1' });
    expect(output.textContent).toBe('{"predictions": [2.5, 3.0, 4.5]}');
  });

  it('shows TF Serving’s error in Try it’s output, and refuses invalid JSON without sending', async () => {
    // Given a model that refuses the request
    const actions = recordingActions({
      ok: false,
      status: 400,
      text: '{"error": "Expected float"}',
      error: 'Expected float'
    });
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE')])}
        error={null}
        actions={actions}
      />
    );
    const output = screen.getByRole('status', { name: 'Prediction of simple version 1' });
    // When Predict is pressed
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Predict with simple version 1' }));
    });
    // Then the output shows the error
    expect(output.textContent).toBe('Expected float');
    expect(output.getAttribute('data-failed')).toBe('true');
    // When the request is not JSON
    fireEvent.change(screen.getByRole('textbox', { name: 'Request for simple version 1' }), {
      target: { value: '{"instances": [1.0,' }
    });
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Predict with simple version 1' }));
    });
    // Then it says so and nothing more was sent
    expect(output.textContent).toMatch(/^The request is not valid JSON/);
    expect(actions.calls).toHaveLength(1);
  });

  it('shows URLs with copy buttons, and the curl line posts JSON to the url', () => {
    // Given a served version
    const actions = recordingActions();
    const served = aServe('simple', 1, 'AVAILABLE');
    render(<ModelServePanel snapshot={snapshotWith([served])} error={null} actions={actions} />);
    // When each copy button is pressed
    for (const name of [
      'Copy URL of simple version 1',
      'Copy proxy URL of simple version 1',
      'Copy curl command for simple version 1'
    ]) {
      fireEvent.click(screen.getByRole('button', { name }));
    }
    // Then the url, the proxy url and the curl line were copied, and both URLs are shown
    const curl = curlCommand(served.url!);
    expect(actions.calls).toEqual([`copy ${served.url}`, `copy ${served.proxyUrl}`, `copy ${curl}`]);
    expect(curl).toBe(
      `curl -X POST -H 'Content-Type: application/json' -d '${DEFAULT_REQUEST}' '${served.url}'`
    );
    expect(row(1).textContent).toContain(served.url!);
    expect(row(1).textContent).toContain(served.proxyUrl!);
    // And each button says it copied
    expect(screen.getByRole('button', { name: 'Copy URL of simple version 1' }).textContent).toBe(
      'Copied'
    );
  });

  it('shows a serve’s log lines when asked', async () => {
    // Given a served version
    const actions = recordingActions();
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'LOADING')])}
        error={null}
        actions={actions}
      />
    );
    // When Show logs is pressed
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Show logs of simple version 1' }));
    });
    // Then the lines are in the labelled pre
    const pre = document.querySelector('pre[aria-label="Logs of simple version 1"]')!;
    expect(pre.textContent).toBe('first line\nsecond line');
  });

  it('shows a server error in the alert area, and Refresh asks again', () => {
    // Given the last request failed
    const actions = recordingActions();
    render(
      <ModelServePanel
        snapshot={snapshotWith([])}
        error="The model registry is unavailable: database is locked"
        actions={actions}
      />
    );
    // Then the alert area says so
    expect(screen.getByRole('alert').textContent).toBe(
      'The model registry is unavailable: database is locked'
    );
    // When Refresh is pressed
    fireEvent.click(screen.getByRole('button', { name: 'Refresh' }));
    // Then the panel asks again
    expect(actions.calls).toEqual(['refresh']);
  });

  it('keeps the alert area empty without an error', () => {
    render(<ModelServePanel snapshot={null} error={null} actions={recordingActions()} />);
    expect(screen.getByRole('alert').textContent).toBe('');
    expect(document.querySelector('.jp-ModelServe')!.textContent).toContain('Loading');
  });
});

describe('An AVAILABLE serve’s details', () => {
  function cells(table: HTMLElement): string[][] {
    return [...table.querySelectorAll('tbody tr')].map(tr =>
      [...tr.children].map(cell => cell.textContent ?? '')
    );
  }

  it('shows the signature compactly: in/out, name, dtype, shape', () => {
    // Given simple 1 AVAILABLE with a two-input signature read
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE')], { 1: twoInputDetails() })}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then a labelled table names each tensor, -1 as "?" and an unknown rank as "any"
    const table = screen.getByRole('table', { name: 'Signature of simple version 1' });
    expect(table.querySelector('caption')!.textContent).toBe('serving_default');
    expect(cells(table)).toEqual([
      ['in', 'pixels', 'float', '[?, 28, 28]'],
      ['in', 'label_hint', 'int64', 'any'],
      ['out', 'scores', 'float', '[?, 10]']
    ]);
  });

  it('shows the metrics: requests, errors, p50 and p99 latency', () => {
    // Given simple 1 AVAILABLE with 12 requests counted, and simple 2 with none yet
    const idle: ServeDetails = {
      ...twoInputDetails(),
      metrics: { requestCount: 0, errorCount: 0, latencyP50Ms: null, latencyP99Ms: null }
    };
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE'), aServe('simple', 2, 'AVAILABLE')], {
          1: twoInputDetails(),
          2: idle
        })}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then each term has its value, latencies to a precision that reads
    const metrics = screen.getByLabelText('Metrics of simple version 1');
    const pairs = [...metrics.querySelectorAll('div')].map(d => d.textContent);
    expect(pairs).toEqual(['requests12', 'errors1', 'p500.42 ms', 'p99123 ms']);
    expect(metrics.getAttribute('data-request-count')).toBe('12');
    // and a serve with no requests yet has no latency to show
    const none = screen.getByLabelText('Metrics of simple version 2');
    expect([...none.querySelectorAll('dd')].map(d => d.textContent)).toEqual(['0', '0', '–', '–']);
  });

  it('says so while the details are read, and shows none for a serve that is not AVAILABLE', () => {
    // Given simple 1 AVAILABLE with nothing read yet, and simple 2 LOADING
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE'), aServe('simple', 2, 'LOADING')], {
          2: twoInputDetails()
        })}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then version 1 says it is reading, version 2 shows no signature or metrics
    expect(row(1).querySelector('[aria-busy="true"]')!.textContent).toContain('Reading');
    expect(screen.queryByRole('table', { name: 'Signature of simple version 2' })).toBeNull();
    expect(screen.queryByLabelText('Metrics of simple version 2')).toBeNull();
  });

  it('says when the signature or the metrics are unknown, and a failed read’s reason', () => {
    // Given version 1 whose model server gave no metrics, and version 2 whose read failed
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE'), aServe('simple', 2, 'AVAILABLE')], {
          1: { signature: null, exampleRequest: null, metrics: null, error: null },
          2: { ...twoInputDetails(), metrics: null, error: 'The model server is unavailable' }
        })}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then each says so in its row
    expect(screen.getByLabelText('Signature of simple version 1').textContent).toMatch(/not known/);
    expect(screen.getByLabelText('Metrics of simple version 1').textContent).toMatch(/No metrics/);
    expect(row(2).querySelector('.jp-ModelServe-detailsError')!.textContent).toContain(
      'The model server is unavailable'
    );
    // and what was read before about the signature stays
    expect(screen.getByRole('table', { name: 'Signature of simple version 2' })).toBeTruthy();
  });

  it('says when a known signature came without an example request', () => {
    // Given a version whose example the server left out (it would be too large)
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'AVAILABLE')], {
          1: { ...twoInputDetails(), exampleRequest: null }
        })}
        error={null}
        actions={recordingActions()}
      />
    );
    // Then the row says so, and Try it keeps the default request
    expect(row(1).textContent).toContain('No example request');
    const box = screen.getByRole('textbox', { name: 'Request for simple version 1' });
    expect((box as HTMLTextAreaElement).value).toBe(DEFAULT_REQUEST);
  });

  it('puts the example request in the curl line and in Try it', async () => {
    // Given simple 1 AVAILABLE with its example request read
    const actions = recordingActions();
    const served = aServe('simple', 1, 'AVAILABLE');
    const details = twoInputDetails();
    render(
      <ModelServePanel snapshot={snapshotWith([served], { 1: details })} error={null} actions={actions} />
    );
    const body = JSON.stringify(details.exampleRequest);
    // When the curl line is copied and Try it predicts
    fireEvent.click(screen.getByRole('button', { name: 'Copy curl command for simple version 1' }));
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Predict with simple version 1' }));
    });
    // Then both carry the example body, not the default
    expect(actions.calls).toEqual([
      `copy ${curlCommand(served.url!, body)}`,
      `predict simple 1 ${served.proxyUrl} ${body}`
    ]);
    expect(row(1).querySelector('.jp-ModelServe-curl')!.textContent).toContain(body);
  });

  it('fills Try it with the example once it arrives, unless the user typed', () => {
    // Given simple 1 and 2 AVAILABLE, nothing read yet; the user types in version 2's box
    const serves = [aServe('simple', 1, 'AVAILABLE'), aServe('simple', 2, 'AVAILABLE')];
    const actions = recordingActions();
    const { rerender } = render(
      <ModelServePanel snapshot={snapshotWith(serves)} error={null} actions={actions} />
    );
    const box = (v: number): HTMLTextAreaElement =>
      screen.getByRole('textbox', { name: `Request for simple version ${v}` }) as HTMLTextAreaElement;
    expect(box(1).value).toBe(DEFAULT_REQUEST);
    fireEvent.change(box(2), { target: { value: '{"instances": [7]}' } });
    // When the details arrive
    const details = twoInputDetails();
    rerender(
      <ModelServePanel
        snapshot={snapshotWith(serves, { 1: details, 2: details })}
        error={null}
        actions={actions}
      />
    );
    // Then version 1's box holds the example, version 2's what the user typed
    expect(box(1).value).toBe(JSON.stringify(details.exampleRequest));
    expect(box(2).value).toBe('{"instances": [7]}');
  });

  it('shows only the start of a long curl line, and copies all of it', () => {
    // Given an example request far longer than the panel shows
    const big: ServeDetails = {
      ...twoInputDetails(),
      exampleRequest: { instances: [new Array(2000).fill(0)] }
    };
    const actions = recordingActions();
    const served = aServe('simple', 1, 'AVAILABLE');
    render(<ModelServePanel snapshot={snapshotWith([served], { 1: big })} error={null} actions={actions} />);
    // When its curl line is copied
    fireEvent.click(screen.getByRole('button', { name: 'Copy curl command for simple version 1' }));
    // Then the panel shows a cut line that says so, and the copy is the whole command
    const full = curlCommand(served.url!, JSON.stringify(big.exampleRequest));
    const shown = row(1).querySelector('.jp-ModelServe-curl')!.textContent!;
    expect(shown.startsWith(full.slice(0, CURL_SHOWN_CHARS))).toBe(true);
    expect(shown).toContain(`${full.length} characters`);
    expect(shown.length).toBeLessThan(CURL_SHOWN_CHARS + 60);
    expect(actions.calls).toEqual([`copy ${full}`]);
  });
});

// The Stop of a DELETING serve is there but disabled: it is already stopping.
describe('Stop while DELETING', () => {
  it('is aria-disabled, keeps focus, and does nothing when clicked', () => {
    const spy = vi.fn();
    render(
      <ModelServePanel
        snapshot={snapshotWith([aServe('simple', 1, 'DELETING')])}
        error={null}
        actions={{ ...recordingActions(), stop: spy }}
      />
    );
    const stopButton = screen.getByRole('button', { name: 'Stop simple version 1' });
    expect(stopButton.getAttribute('aria-disabled')).toBe('true');
    // (not `disabled`: a disabled element loses the keyboard focus to the page)
    expect((stopButton as HTMLButtonElement).disabled).toBe(false);
    fireEvent.click(stopButton);
    expect(spy).not.toHaveBeenCalled();
  });
});
