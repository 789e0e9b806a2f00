{{/*
Names. The app.kubernetes.io/name label is always "ecsnet": the pods find each other with the selector
app.kubernetes.io/name=ecsnet,app.kubernetes.io/instance=<release>.
*/}}
{{- define "ecsnet.name" -}}
ecsnet
{{- end }}

{{/* Prefix of every object's name: the release name, or release-ecsnet when the release name lacks "ecsnet". */}}
{{- define "ecsnet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains "ecsnet" .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-ecsnet" .Release.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ecsnet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the release's pods (every component). */}}
{{- define "ecsnet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecsnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "ecsnet.labels" -}}
{{ include "ecsnet.selectorLabels" . }}
helm.sh/chart: {{ include "ecsnet.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ecsnet
{{- end }}

{{/* The discovery's pod label selector, as one string. */}}
{{- define "ecsnet.podLabelSelector" -}}
app.kubernetes.io/name={{ include "ecsnet.name" . }},app.kubernetes.io/instance={{ .Release.Name }}
{{- end }}

{{- define "ecsnet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecsnet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: give the name of an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ecsnet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The token Secret's name; rendering stops when neither an existing Secret nor a value is given. */}}
{{- define "ecsnet.tokenSecretName" -}}
{{- if .Values.token.existingSecret }}
{{- .Values.token.existingSecret }}
{{- else if .Values.token.value }}
{{- printf "%s-token" (include "ecsnet.fullname" .) }}
{{- else }}
{{- fail "token: the control API needs a token. Set token.existingSecret (a Secret with key 'token') or token.value (at least 16 characters), e.g. --set token.value=$(head -c 32 /dev/urandom | base64)" }}
{{- end }}
{{- end }}

{{- define "ecsnet.tokenSecretKey" -}}
{{- if .Values.token.existingSecret }}{{ .Values.token.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* Whether a registry connection string is configured, and the Secret holding it. */}}
{{- define "ecsnet.registryEnabled" -}}
{{- if or .Values.registry.existingSecret .Values.registry.connectionString }}true{{ end }}
{{- end }}

{{- define "ecsnet.registrySecretName" -}}
{{- if .Values.registry.existingSecret }}
{{- .Values.registry.existingSecret }}
{{- else }}
{{- printf "%s-registry" (include "ecsnet.fullname" .) }}
{{- end }}
{{- end }}

{{- define "ecsnet.registrySecretKey" -}}
{{- if .Values.registry.existingSecret }}{{ .Values.registry.existingSecretKey }}{{ else }}connectionString{{ end }}
{{- end }}

{{- define "ecsnet.dataClaimName" -}}
{{- default (printf "%s-data" (include "ecsnet.fullname" .)) .Values.persistence.data.existingClaim }}
{{- end }}

{{- define "ecsnet.runsClaimName" -}}
{{- default (printf "%s-runs" (include "ecsnet.fullname" .)) .Values.persistence.runs.existingClaim }}
{{- end }}

{{/*
Environment of every ecsnet container: the pod's IP (the node's --hostname) and the cluster formation through
the discovery joiner: it lists the release's pods through the Kubernetes API and joins them on their container
port named "remoting" (4053; the default of EcsNet__Node__Discovery__PortName, see ecsnet.clusterPorts).
*/}}
{{- define "ecsnet.clusterEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: EcsNet__Node__Discovery__Method
  value: kubernetes
- name: EcsNet__Node__Discovery__PodLabelSelector
  value: {{ include "ecsnet.podLabelSelector" . | quote }}
- name: EcsNet__Node__Discovery__RequiredContactPoints
  value: {{ .Values.discovery.requiredContactPoints | quote }}
- name: EcsNet__Node__Discovery__Namespace
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/* Container ports shared by every node; the discovery joins a pod on the port named "remoting". */}}
{{- define "ecsnet.clusterPorts" -}}
- name: remoting
  containerPort: 4053
- name: http
  containerPort: 8080
{{- end }}

{{/* Pod-level security: the image's non-root user. */}}
{{- define "ecsnet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ecsnet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .Values.readOnlyRootFilesystem }}
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Liveness, readiness and the graceful stop, shared by every node. */}}
{{- define "ecsnet.healthAndShutdown" -}}
readinessProbe:
  httpGet:
    path: /healthz/ready
    port: http
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz/live
    port: http
  initialDelaySeconds: 10
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.preStopSleepSeconds }}
{{- end }}

{{/* Volumes every node mounts: the dataset (read-only), the runs and a scratch /tmp. */}}
{{- define "ecsnet.sharedMounts" -}}
- name: data
  mountPath: /data
  readOnly: true
- name: runs
  mountPath: /runs
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "ecsnet.sharedVolumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "ecsnet.dataClaimName" . }}
    readOnly: true
- name: runs
  persistentVolumeClaim:
    claimName: {{ include "ecsnet.runsClaimName" . }}
- name: tmp
  emptyDir: {}
{{- end }}

{{/* Annotations for Prometheus setups that scrape annotated pods. */}}
{{- define "ecsnet.scrapeAnnotations" -}}
{{- if .Values.prometheusAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: "8080"
prometheus.io/path: /metrics
{{- end }}
{{- end }}
