/* test_model_run.c with the ref and vk backends (Vulkan: lavapipe without a GPU). */
#define MR_BACKENDS "ref,vk"
#include "test_model_run.c"
