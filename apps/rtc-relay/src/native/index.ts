export {
  applyLibjuicePatch,
  type BinaryEdit,
  type BinaryPatch,
  inspectLibjuicePatch,
  LIBJUICE_ZERO_TIEBREAKER_PATCHES,
  locateNativeBinary,
  type NativeBinary,
  type PatchInspection,
  type PatchStatus,
} from './libjuice-patch';
