// validate.mjs -- offline checks of the rendered manifests (`kubectl kustomize deploy/kubernetes`
// on stdin), run by scripts/check-kubernetes.sh:
//  1. every object against the Kubernetes JSON schemas bundled in kubernetes-models (types,
//     required fields, enums, quantities; the schemas do not reject unknown fields);
//  2. what sandboxd and its router rely on, which no schema knows: the sandbox's security
//     context, probes on /ready and /health, NODE_ID from the pod name, resources, a headless
//     Service that publishes not-ready pods, a grace period past SHUTDOWN_GRACE_MS, scrape
//     annotations, a PDB and an HPA aimed at the StatefulSet, an HPA that stays within the
//     replicas the router knows.
// Prints one line per problem and exits 1 if there is any.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const problems = [];
const fail = (what, msg) => problems.push(`${what}: ${msg}`);
const docs = parseAllDocuments(readFileSync(0, "utf8")).map((d) => d.toJSON()).filter(Boolean);
const name = (o) => `${o.kind}/${o.metadata?.name}`;

for (const o of docs) {
    let Model;
    try {
        Model = (await import(`kubernetes-models/${o.apiVersion}`))[o.kind];
    } catch {
        Model = undefined;
    }
    if (!Model) {
        fail(name(o), `no bundled schema for ${o.apiVersion} ${o.kind}`);
        continue;
    }
    try {
        new Model(o).validate();
    } catch (e) {
        fail(name(o), `schema: ${e.message}`);
    }
}

const find = (kind, n) => docs.find((o) => o.kind === kind && o.metadata?.name === n);
const matches = (selector, labels) =>
    Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

// every workload: resources, no privilege, probes
for (const o of docs.filter((d) => ["StatefulSet", "Deployment"].includes(d.kind))) {
    const pod = o.spec.template;
    if (!matches(o.spec.selector.matchLabels, pod.metadata.labels))
        fail(name(o), "its selector does not match its pod labels");
    for (const c of pod.spec.containers) {
        const w = `${name(o)} container ${c.name}`;
        for (const k of ["requests", "limits"])
            for (const r of ["cpu", "memory"])
                if (!c.resources?.[k]?.[r]) fail(w, `resources.${k}.${r} is not set`);
        if (c.securityContext?.privileged) fail(w, "is privileged");
        if (c.securityContext?.allowPrivilegeEscalation !== false)
            fail(w, "allowPrivilegeEscalation is not false");
        if (!(c.securityContext?.capabilities?.drop ?? []).includes("ALL"))
            fail(w, "does not drop ALL capabilities");
        if (!c.readinessProbe || !c.livenessProbe) fail(w, "lacks a readiness or liveness probe");
    }
}

const sts = find("StatefulSet", "sandboxd");
if (!sts) fail("StatefulSet/sandboxd", "missing");
else {
    const pod = sts.spec.template;
    const c = pod.spec.containers.find((x) => x.name === "sandboxd");
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e]));
    const sp = pod.spec.securityContext?.seccompProfile;
    if (sp?.type !== "Localhost" || sp.localhostProfile !== "profiles/sandboxd.json")
        fail(name(sts), "the pod's seccompProfile must be Localhost profiles/sandboxd.json " +
            "(deploy/docker/seccomp.json on each node)");
    if (!pod.spec.securityContext?.runAsNonRoot) fail(name(sts), "runAsNonRoot is not set");
    if (c?.readinessProbe?.httpGet?.path !== "/ready") fail(name(sts), "readiness is not GET /ready");
    if (c?.livenessProbe?.httpGet?.path !== "/health") fail(name(sts), "liveness is not GET /health");
    if (env.NODE_ID?.valueFrom?.fieldRef?.fieldPath !== "metadata.name")
        fail(name(sts), "NODE_ID must come from the pod's name (the router routes by it)");
    if (!env.AUTH_TOKEN?.valueFrom?.secretKeyRef) fail(name(sts), "AUTH_TOKEN must come from a Secret");
    const grace = Number(env.SHUTDOWN_GRACE_MS?.value ?? 5000);
    if ((pod.spec.terminationGracePeriodSeconds ?? 30) * 1000 < grace + 10000)
        fail(name(sts), "terminationGracePeriodSeconds must exceed SHUTDOWN_GRACE_MS by 10 s");
    const a = pod.metadata.annotations ?? {};
    if (a["prometheus.io/scrape"] !== "true" || a["prometheus.io/path"] !== "/metrics")
        fail(name(sts), "lacks the Prometheus scrape annotations");
    const svc = find("Service", sts.spec.serviceName);
    if (!svc || svc.spec.clusterIP !== "None" || !svc.spec.publishNotReadyAddresses)
        fail(name(sts), "its serviceName must be a headless Service with publishNotReadyAddresses " +
            "(a full or draining replica still serves its sessions)");
    else if (!matches(svc.spec.selector, pod.metadata.labels))
        fail(name(svc), "does not select the StatefulSet's pods");
    const pdb = docs.find((o) => o.kind === "PodDisruptionBudget");
    if (!pdb || !matches(pdb.spec.selector.matchLabels, pod.metadata.labels))
        fail("PodDisruptionBudget", "missing, or it does not select the StatefulSet's pods");
    const hpa = docs.find((o) => o.kind === "HorizontalPodAutoscaler");
    const cfg = docs.find((o) => o.kind === "ConfigMap" && o.data?.["haproxy.cfg"]);
    const known = cfg ? (cfg.data["haproxy.cfg"].match(/^backend node-sandboxd-\d+$/gm) ?? []).length : 0;
    if (!hpa || hpa.spec.scaleTargetRef.kind !== "StatefulSet" || hpa.spec.scaleTargetRef.name !== "sandboxd")
        fail("HorizontalPodAutoscaler", "missing, or not aimed at StatefulSet/sandboxd");
    else if (hpa.spec.maxReplicas > known)
        fail(name(hpa), `maxReplicas ${hpa.spec.maxReplicas} exceeds the ${known} replicas the router ` +
            "knows (deploy/kubernetes/render-router.sh MAX_REPLICAS)");
}

const router = find("Deployment", "sandboxd-router");
const rsvc = find("Service", "sandboxd-router");
if (!router || !rsvc || !matches(rsvc.spec.selector, router.spec.template.metadata.labels))
    fail("Deployment/sandboxd-router", "missing, or its Service does not select it");
else if (!router.spec.template.spec.volumes?.some((v) => v.configMap?.name?.startsWith("sandboxd-router")))
    fail(name(router), "does not mount the generated sandboxd-router ConfigMap");

for (const p of problems) console.log(`check-kubernetes: ${p}`);
console.log(`check-kubernetes: ${docs.length} objects, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
