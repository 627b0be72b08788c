/** Per-project limits. The operator may override them per project (`spec.limits`). */
export interface ProjectLimits {
  maxFileBytes: number;
  maxFiles: number;
  maxProjectBytes: number;
  maxPathBytes: number;
  maxNameBytes: number;
  maxAnnotationBytes: number;
  /** Annotations kept beside one path; every mount holds them all in memory. */
  maxAnnotationsPerPath: number;
  maxContextPackages: number;
}

export const DEFAULT_LIMITS: Readonly<ProjectLimits> = Object.freeze({
  maxFileBytes: 64 * 1024 * 1024,
  maxFiles: 100_000,
  maxProjectBytes: 4 * 1024 * 1024 * 1024,
  maxPathBytes: 4096,
  maxNameBytes: 255,
  maxAnnotationBytes: 64 * 1024,
  maxAnnotationsPerPath: 1000,
  maxContextPackages: 1000,
});
