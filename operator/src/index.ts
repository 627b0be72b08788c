export { startOperator, type OperatorOptions, type RunningOperator } from './operator.js';
export { redisUserOf, resourcePath, secretNameOf, sloOf, type BridgeProject, type BridgeProjectSpec } from './bridgeProject.js';
export { allExpressions, fleetRuleGroups, RUNBOOK_BASE } from './monitoring.js';
export { MONITORING_FILES } from './monitoringFiles.js';
export { connectKube, KubeApiError, loadKubeConfig, type KubeClient } from './kubeClient.js';
export { connectProjectRedis, type ProjectRedis } from './projectRedis.js';
export { ARCHIVE_MOUNT, restoreJobName } from './restore.js';
