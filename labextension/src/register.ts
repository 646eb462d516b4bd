/**
 * "Register as model…" in the file browser's context menu: a folder holding
 * saved_model.pb becomes the next version of a registered model.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { modelNameFromPath, modelNameProblem } from './names';

export const SAVED_MODEL_FILE = 'saved_model.pb';

/** Whether the folder at `path` holds a saved_model.pb (one contents read). */
export async function holdsSavedModel(
  contents: Contents.IManager,
  path: string
): Promise<boolean> {
  const listing = await contents.get(path, { content: true, type: 'directory' });
  const items = Array.isArray(listing.content) ? (listing.content as Contents.IModel[]) : [];
  return items.some(item => item.name === SAVED_MODEL_FILE && item.type !== 'directory');
}

/** The dialog's body: the name input and a line that says what is wrong. */
export class RegisterBody extends Widget {
  constructor(folder: string, name: string, problem: string | null) {
    super({ node: document.createElement('div') });
    this.addClass('jp-ModelServe-registerBody');

    const intro = document.createElement('p');
    intro.textContent = `Register the SavedModel in “${folder}” as the next version of:`;

    const label = document.createElement('label');
    label.textContent = 'Model name';
    label.className = 'jp-ModelServe-registerLabel';
    this._input = document.createElement('input');
    this._input.className = 'jp-mod-styled jp-ModelServe-registerName';
    this._input.setAttribute('aria-label', 'Model name');
    this._input.value = name;
    this._input.maxLength = 255;
    this._input.spellcheck = false;
    label.appendChild(this._input);

    const note = document.createElement('p');
    note.className = 'jp-ModelServe-registerProblem';
    note.setAttribute('role', 'alert');
    note.textContent = problem ?? '';

    this.node.append(intro, label, note);
    this._input.addEventListener('input', () => {
      note.textContent = modelNameProblem(this._input.value.trim()) ?? '';
    });
  }

  getValue(): string {
    return this._input.value.trim();
  }

  onAfterAttach(): void {
    this._input.focus();
    this._input.select();
  }

  private readonly _input: HTMLInputElement;
}

export interface RegisterDeps {
  contents: Contents.IManager;
  register(name: string, source: string): Promise<{ name: string; version: number }>;
  /** Called with the new version once it is registered. */
  registered(name: string, version: number): void;
}

/**
 * Ask for a name and register the folder at `path` (a file browser path).
 * Every failure is said in a dialog; nothing rejects.
 */
export async function registerFolder(path: string, deps: RegisterDeps): Promise<void> {
  const source = deps.contents.localPath(path);
  let holds: boolean;
  try {
    holds = await holdsSavedModel(deps.contents, path);
  } catch (error) {
    await sayNo('Cannot read the folder', `${source}: ${messageOf(error)}`);
    return;
  }
  if (!holds) {
    await sayNo(
      'Not a SavedModel folder',
      `“${source || '/'}” holds no ${SAVED_MODEL_FILE}, so it cannot be registered as a model. ` +
        `Choose the folder that holds ${SAVED_MODEL_FILE} (for example the one Keras's ` +
        'Model.export() wrote).'
    );
    return;
  }

  let name = modelNameFromPath(source);
  let problem: string | null = null;
  for (;;) {
    const result = await showDialog({
      title: 'Register as model',
      body: new RegisterBody(source, name, problem),
      buttons: [Dialog.cancelButton({ label: 'Cancel' }), Dialog.okButton({ label: 'Register' })],
      focusNodeSelector: 'input'
    });
    if (!result.button.accept || result.value === null) {
      return;
    }
    name = result.value;
    problem = modelNameProblem(name);
    if (problem !== null) {
      continue;
    }
    try {
      const version = await deps.register(name, source);
      deps.registered(version.name, version.version);
      return;
    } catch (error) {
      // Say why and let the user fix the name (a 409, a bad folder...).
      problem = messageOf(error);
    }
  }
}

async function sayNo(title: string, message: string): Promise<void> {
  await showDialog({ title, body: message, buttons: [Dialog.okButton({ label: 'OK' })] });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
