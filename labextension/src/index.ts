/**
 * The extension's two plugins: the "Model Serving" sidebar and the file
 * browser's "Register as model…".
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';

import { registerVersion } from './client';
import { modelServeIcon } from './icons';
import { ModelServeModel } from './model';
import { registerFolder } from './register';
import { ModelServeSidebar, SIDEBAR_ID, SIDEBAR_LABEL } from './sidebar';

export const CommandIDs = {
  open: 'modelserve:open',
  refresh: 'modelserve:refresh',
  register: 'modelserve:register'
} as const;

const CATEGORY = 'Model Serving';

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-modelserve:sidebar',
  description: 'A sidebar that lists registered models and serves them.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, shell: ILabShell, palette: ICommandPalette | null) => {
    const settings = app.serviceManager.serverSettings;
    const model = new ModelServeModel(settings);
    const sidebar = new ModelServeSidebar(model, settings);
    sidebar.title.icon = modelServeIcon;
    shell.add(sidebar, 'left', { rank: 850, type: SIDEBAR_LABEL });
    void model.refresh();

    app.commands.addCommand(CommandIDs.open, {
      label: 'Open Model Serving',
      caption: 'Show registered models and their serves',
      icon: modelServeIcon,
      execute: () => {
        shell.activateById(SIDEBAR_ID);
        return model.refresh();
      }
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Model Serving',
      execute: () => model.refresh()
    });
    palette?.addItem({ command: CommandIDs.open, category: CATEGORY });
    palette?.addItem({ command: CommandIDs.refresh, category: CATEGORY });
  }
};

const registerPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-modelserve:register',
  description: 'Register a SavedModel folder from the file browser.',
  autoStart: true,
  requires: [IFileBrowserFactory],
  activate: (app: JupyterFrontEnd, factory: IFileBrowserFactory) => {
    const settings = app.serviceManager.serverSettings;

    /** The one folder selected in the current file browser, if that is what is selected. */
    const selectedFolder = (): string | null => {
      const browser = factory.tracker.currentWidget;
      if (!browser) {
        return null;
      }
      const selected = [...browser.selectedItems()];
      return selected.length === 1 && selected[0].type === 'directory' ? selected[0].path : null;
    };

    app.commands.addCommand(CommandIDs.register, {
      label: 'Register as model…',
      caption: 'Register this SavedModel folder as the next version of a model',
      icon: modelServeIcon,
      isVisible: () => selectedFolder() !== null,
      isEnabled: () => selectedFolder() !== null,
      execute: async () => {
        const path = selectedFolder();
        if (path === null) {
          return;
        }
        await registerFolder(path, {
          contents: app.serviceManager.contents,
          register: (name, source) => registerVersion(name, source, settings),
          registered: (name, version) => {
            if (app.commands.hasCommand(CommandIDs.refresh)) {
              void app.commands.execute(CommandIDs.refresh);
            }
            Notification.success(`Registered ${name} version ${version}.`, {
              autoClose: 5000
            });
          }
        });
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.register,
      selector: '.jp-DirListing-item[data-isdir="true"]',
      rank: 60
    });
  }
};

export default [sidebarPlugin, registerPlugin];
