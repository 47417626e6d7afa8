/**
 * POST /services/:id/deploy: places a tenant's function in the cluster as a Knative Service
 * (src/adapters/knative-deployer.ts) from an image reference and scaling settings, and answers
 * once its new revision is Ready. Admin, or the tenant that owns the service.
 */
import { z } from 'zod';
import { DeployError, deployerFromConfig, type KnativeDeployer } from '../../../src/adapters/knative-deployer.js';
import { audit } from '../../../src/api/audit.js';
import { ApiError, type ApiErrorCode } from '../../../src/api/errors.js';
import { reply, route } from '../../../src/api/route.js';
import { idParams } from './common.js';
import type { ApiDeps } from './index.js';
import { visibleService } from './services.js';

// registry[:port]/path[:tag][@sha256:digest], as a container runtime reads it.
const imageReference = z
  .string()
  .max(500)
  .regex(
    /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:\d{1,5})?(\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/,
    'an image reference such as registry.example/team/fn:1.2 or …@sha256:<64 hex>',
  );
const reservedEnv = /^(PORT|K_[A-Z_]*|FAASBILLING_(TENANT|SERVICE))$/;

const deployBody = z
  .strictObject({
    image: imageReference.describe('the container image of the function'),
    min_scale: z.number().int().min(0).max(100).default(0).describe('autoscaling.knative.dev/min-scale (0 scales to zero)'),
    max_scale: z.number().int().min(1).max(1000).default(10).describe('autoscaling.knative.dev/max-scale'),
    target: z.number().int().min(1).max(10_000).default(100).describe('autoscaling.knative.dev/target: concurrent requests per replica'),
    container_port: z.number().int().min(1).max(65_535).default(8080),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name'), z.string().max(4096))
      .refine((env) => Object.keys(env).length <= 50, 'at most 50 variables')
      .refine((env) => !Object.keys(env).some((k) => reservedEnv.test(k)), 'PORT, K_* and FAASBILLING_TENANT/SERVICE are set by the platform')
      .default({}),
  })
  .refine((b) => b.min_scale <= b.max_scale, { message: 'min_scale must not exceed max_scale', path: ['min_scale'] });

export const deploymentSchema = z.object({
  service_id: z.uuid(),
  name: z.string().describe('the Knative Service'),
  namespace: z.string(),
  revision: z.string().describe('the Ready revision now serving'),
  url: z.string(),
  image: z.string(),
  scale: z.object({ min: z.number().int(), max: z.number().int(), target: z.number().int() }),
  created: z.boolean().describe('false when an existing Knative Service was updated'),
});

const failureCodes: Record<DeployError['kind'], ApiErrorCode> = {
  conflict: 'conflict',
  rejected: 'deploy_failed',
  failed: 'deploy_failed',
  timeout: 'deploy_timeout',
  unreachable: 'deploy_failed',
};

export const deployRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  let deployer: KnativeDeployer | undefined;
  let setupError: string | undefined;
  const getDeployer = (): KnativeDeployer => {
    if (!deployer && setupError === undefined) {
      try {
        deployer = deployerFromConfig(deps.config);
        if (!deployer) setupError = 'deployments are off in this installation (DEPLOY_TARGET=off)';
      } catch (err) {
        setupError = `the Kubernetes client could not be configured: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    if (!deployer) throw new ApiError('deploy_unavailable', setupError ?? 'deployments are unavailable');
    return deployer;
  };
  return [
    route({
      method: 'post',
      path: '/services/:id/deploy',
      summary: 'Deploy the service as a Knative Service from an image',
      description:
        'Creates or updates the Knative Service of this service (server-side apply), labelled faasbilling.dev/tenant and faasbilling.dev/service so its usage maps back, and answers when the new revision is Ready (DEPLOY_READY_TIMEOUT_MS).',
      tag: 'services',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      params: idParams,
      body: deployBody,
      responses: {
        200: { description: 'Updated; the new revision is Ready', schema: deploymentSchema },
        201: { description: 'Created; the first revision is Ready', schema: deploymentSchema },
        409: { description: 'A Knative Service of that name belongs to something else' },
        502: { description: 'The cluster refused the Service or its revision failed (detail says why)' },
        503: { description: 'Deployments are off or the Kubernetes client is not configured' },
        504: { description: 'The revision was not Ready in time (it may still become Ready)' },
      },
      handle: async ({ principal, params, body }) => {
        const service = await visibleService(db, principal, params.id);
        const target = getDeployer();
        const tenant = await db('tenants').where({ id: service.tenant_id }).first<{ slug: string } | undefined>('slug');
        if (!tenant) throw new ApiError('internal', `tenant of service ${service.id} not found`);
        const scale = { min: body.min_scale, max: body.max_scale, target: body.target };
        const result = await target
          .deploy({
            tenantId: service.tenant_id,
            tenantSlug: tenant.slug,
            serviceId: service.id,
            serviceName: service.name,
            image: body.image,
            scale,
            containerPort: body.container_port,
            memoryLimitMb: service.memory_limit_mb,
            cpuLimitCores: service.cpu_limit_cores,
            env: body.env,
          })
          .catch((err: unknown) => {
            if (err instanceof DeployError) throw new ApiError(failureCodes[err.kind], err.message);
            throw err;
          });
        await db.transaction(async (trx) => {
          await trx('revisions')
            .insert({ service_id: service.id, name: result.revision, image: body.image, memory_limit_mb: service.memory_limit_mb, scaling_config: JSON.stringify(scale) })
            .onConflict(['service_id', 'name'])
            .merge(['image', 'scaling_config']);
          await audit(trx, principal, {
            action: 'service.deploy',
            entityType: 'service',
            entityId: service.id,
            tenantId: service.tenant_id,
            details: { knative_service: `${result.namespace}/${result.name}`, revision: result.revision, image: body.image, scale },
          });
        });
        const out: z.infer<typeof deploymentSchema> = { service_id: service.id, name: result.name, namespace: result.namespace, revision: result.revision, url: result.url, image: body.image, scale, created: result.created };
        return reply(result.created ? 201 : 200, out);
      },
    }),
  ];
};
