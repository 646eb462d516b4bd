import { LabIcon } from '@jupyterlab/ui-components';

import modelServeSvg from '../style/icons/modelserve.svg';

/** The sidebar tab's icon: a box (the model) with a dot (the endpoint). */
export const modelServeIcon = new LabIcon({
  name: 'jupyter-modelserve:icon',
  svgstr: modelServeSvg
});
