import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { describe, expect, it } from 'vitest';

import { RegisterBody, holdsSavedModel } from '../src/register';

/** A contents manager that lists one folder, as Jupyter's contents API answers it. */
function folderHolding(items: Array<{ name: string; type: string }>): Contents.IManager {
  const listing = { path: 'models/half/1', type: 'directory', content: items };
  return { get: async () => listing } as unknown as Contents.IManager;
}

describe('holdsSavedModel', () => {
  it('is true for a folder with a saved_model.pb file', async () => {
    const contents = folderHolding([
      { name: 'saved_model.pb', type: 'file' },
      { name: 'variables', type: 'directory' }
    ]);
    expect(await holdsSavedModel(contents, 'models/half/1')).toBe(true);
  });

  it('is false without one, or when saved_model.pb is a folder', async () => {
    expect(await holdsSavedModel(folderHolding([{ name: '1', type: 'directory' }]), 'm')).toBe(false);
    expect(
      await holdsSavedModel(folderHolding([{ name: 'saved_model.pb', type: 'directory' }]), 'm')
    ).toBe(false);
  });
});

describe('RegisterBody', () => {
  it('has a labelled name input, prefilled, that says what is wrong as one types', () => {
    // Given the dialog's body for a folder
    const body = new RegisterBody('models/half/1', 'half', null);
    Widget.attach(body, document.body);
    const input = body.node.querySelector<HTMLInputElement>('input[aria-label="Model name"]')!;
    const problem = body.node.querySelector('[role="alert"]')!;
    // Then the name is prefilled and nothing is wrong
    expect(input.value).toBe('half');
    expect(problem.textContent).toBe('');
    // When a name that breaks the rule is typed
    input.value = 'half plus two';
    input.dispatchEvent(new Event('input'));
    // Then the body says why, and gives the typed value
    expect(problem.textContent).toMatch(/letters, digits/);
    expect(body.getValue()).toBe('half plus two');
    Widget.detach(body);
  });
});
