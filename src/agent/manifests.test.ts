/**
 * deploy/components/agent against the code: the DaemonSet's environment is a valid agent
 * configuration, it runs as the ServiceAccount bound to the shared ClusterRole
 * (deploy/base/metering-reader.yaml), and that role grants (read-only) exactly what the agent and
 * the scraper read through the Kubernetes API. (test/deploy.test.ts and test/manifests.test.ts
 * render the component with deploy/base and the overlays.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { agentConfigSchema } from './config.js';

const deployDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy');

interface Doc {
  kind: string;
  metadata: { name: string };
  [key: string]: unknown;
}
const read = (file: string): Doc[] => parseAllDocuments(readFileSync(path.join(deployDir, file), 'utf8')).map((d) => d.toJS() as Doc);

describe('deploy/components/agent manifests', () => {
  const [daemonSet] = read('components/agent/daemonset.yaml') as unknown as [
    {
      spec: {
        template: {
          spec: {
            serviceAccountName: string;
            containers: { env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[]; volumeMounts: { mountPath: string; readOnly: boolean }[] }[];
          };
        };
      };
    },
  ];
  const rbac = [...read('components/agent/rbac.yaml'), ...read('base/metering-reader.yaml')];

  it('sets a valid agent configuration, the node from the downward API and the cgroup root it mounts read-only', () => {
    const container = daemonSet.spec.template.spec.containers[0]!;
    const env = Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    const nodeName = container.env.find((e) => e.name === 'AGENT_NODE_NAME');
    assert.equal(nodeName?.valueFrom?.fieldRef.fieldPath, 'spec.nodeName');
    const config = agentConfigSchema.parse({ ...env, AGENT_NODE_NAME: 'node-1' });
    const mount = container.volumeMounts.find((m) => m.mountPath === config.AGENT_CGROUP_ROOT);
    assert.ok(mount?.readOnly, `${config.AGENT_CGROUP_ROOT} is mounted read-only`);
    assert.ok(config.K_SINK, 'the agent has a sink');
  });

  it('binds a read-only role on pods and Knative Revisions to the agent’s ServiceAccount', () => {
    const account = rbac.find((d) => d.kind === 'ServiceAccount');
    assert.equal(account?.metadata.name, daemonSet.spec.template.spec.serviceAccountName);
    const role = rbac.find((d) => d.kind === 'ClusterRole') as unknown as { metadata: { name: string }; rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    const grants = role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => [`${g}/${res}`, [...r.verbs].sort().join(',')])));
    assert.deepEqual(Object.fromEntries(grants), { '/pods': 'get,list,watch', 'serving.knative.dev/revisions': 'get,list,watch' });
    const binding = rbac.find((d) => d.kind === 'ClusterRoleBinding') as unknown as { roleRef: { name: string }; subjects: { name: string; namespace: string }[] };
    assert.equal(binding.roleRef.name, role.metadata.name);
    assert.deepEqual(binding.subjects.map((s) => s.name), [account?.metadata.name]);
  });
});
