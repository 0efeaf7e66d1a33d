/* Vulkan context for kbench (see vk.h): one device, one compute queue, buffers, a pipeline cache
 * and timed command lists. Single-threaded by design: the runner drives one kernel at a time. */
#include "vk.h"

#include "kbench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vulkan/vulkan.h>

#define STAGING_BYTES (64u << 20)
#define FENCE_TIMEOUT_NS (600ull * 1000000000ull) /* lavapipe on big shapes is slow */

typedef struct kb_vk_pipe {
    const uint32_t *spv;
    size_t spv_bytes;
    int nbind, nspec;
    uint32_t push_bytes;
    uint32_t spec[16];
    VkShaderModule mod;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
} kb_vk_pipe;

struct kb_vk_buf {
    struct kb_vk *vk;
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;
    void *map; /* non-NULL when host-visible and coherent */
};

/* What we read off a physical device, for listing and for choosing. */
typedef struct devinfo {
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    uint32_t api; /* min(instance, device) API version */
    VkPhysicalDeviceSubgroupProperties sg;
    VkPhysicalDeviceMaintenance3Properties m3;
    VkPhysicalDeviceDriverProperties drv;            /* valid when api >= 1.2 */
    VkPhysicalDeviceSubgroupSizeControlProperties sc; /* valid when api >= 1.3 */
    VkPhysicalDeviceMaintenance4Properties m4;       /* valid when api >= 1.3 */
} devinfo;

struct kb_vk {
    VkInstance inst;
    uint32_t inst_api;
    devinfo di;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    uint64_t ts_mask; /* valid timestamp bits */
    VkCommandPool pool;
    VkFence fence;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t mem_dev;     /* memory type for storage buffers */
    uint32_t mem_staging; /* host-visible coherent type for staging */
    kb_vk_buf *staging;
    kb_vk_pipe **pipes;
    int npipes;
    int stats; /* KB_VK_PIPELINE_STATS set: report compiled-shader statistics */
    int float16; /* shaderFloat16 enabled */
    int storage16; /* storageBuffer16BitAccess enabled */
    int coopmat_nv; /* VK_NV_cooperative_matrix enabled, with f16 16x16x16 -> f32 */
    int coopmat_khr; /* VK_KHR_cooperative_matrix enabled, with f16 16x16x16 -> f32 */
    kb_vk_limits lim;
    char desc[1024];
};

/* The last kb_vk_create failed on a device that exists (as opposed to no driver or device). */
static int create_fault;

static void seterr(char *err, size_t n, const char *fmt, ...)
{
    if (!err || !n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

static const char *vkres(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    default: return "VkResult error";
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t umin32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint64_t umin64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* ---- instance and device discovery ------------------------------------------------------ */

static int make_instance(VkInstance *inst, uint32_t *api, char *err, size_t errlen)
{
    PFN_vkEnumerateInstanceVersion env =
        (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    uint32_t v = VK_API_VERSION_1_0;
    if (env)
        env(&v);
    if (v < VK_API_VERSION_1_1) {
        seterr(err, errlen, "the Vulkan loader is %u.%u; kbench needs Vulkan 1.1",
               VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v));
        return -1;
    }
    *api = v < VK_API_VERSION_1_3 ? v : VK_API_VERSION_1_3;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "kbench",
                             .pEngineName = "kbench",
                             .apiVersion = *api};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ci, NULL, inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
        seterr(err, errlen, "no Vulkan driver (ICD) is installed or none loads (%s)", vkres(r));
        return -1;
    }
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkCreateInstance failed: %s (%d)", vkres(r), (int)r);
        create_fault = 1; /* a driver is there but does not start (out of memory, ...) */
        return -1;
    }
    return 0;
}

static void read_devinfo(VkPhysicalDevice pd, uint32_t inst_api, devinfo *d)
{
    memset(d, 0, sizeof *d);
    d->pd = pd;
    vkGetPhysicalDeviceProperties(pd, &d->props);
    d->api = umin32(d->props.apiVersion, inst_api);
    if (d->api < VK_API_VERSION_1_1)
        return; /* 1.0 device: no properties2 chain */
    d->sg.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
    d->m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
    d->m3.pNext = &d->sg;
    void *chain = &d->m3;
    if (d->api >= VK_API_VERSION_1_2) {
        d->drv.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
        d->drv.pNext = chain;
        chain = &d->drv;
    }
    if (d->api >= VK_API_VERSION_1_3) {
        d->sc.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES;
        d->sc.pNext = chain;
        d->m4.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES;
        d->m4.pNext = &d->sc;
        chain = &d->m4;
    }
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = chain};
    vkGetPhysicalDeviceProperties2(pd, &p2);
}

static const char *type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static int type_rank(VkPhysicalDeviceType t) /* lower is preferred */
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static void driver_text(const devinfo *d, char *buf, size_t n)
{
    if (d->api >= VK_API_VERSION_1_2 && d->drv.driverName[0])
        snprintf(buf, n, "%s %s", d->drv.driverName, d->drv.driverInfo);
    else
        snprintf(buf, n, "driver 0x%x", d->props.driverVersion);
}

static void line(const devinfo *d, int idx, char *buf, size_t n)
{
    char drv[520];
    driver_text(d, drv, sizeof drv);
    uint32_t v = d->props.apiVersion;
    snprintf(buf, n, "%d: %s (%s) | %s | Vulkan %u.%u.%u | subgroup %u", idx, d->props.deviceName,
             type_name(d->props.deviceType), drv, VK_API_VERSION_MAJOR(v),
             VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v), d->sg.subgroupSize);
}

/* Enumerates devices into a malloc'd array. Returns the count or -1. */
static int enum_devices(VkInstance inst, uint32_t api, devinfo **out, char *err, size_t errlen)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkEnumeratePhysicalDevices failed: %s", vkres(r));
        create_fault = 1; /* a driver loaded but would not start */
        return -1;
    }
    if (n == 0) {
        seterr(err, errlen, "the Vulkan driver reports no device");
        return -1;
    }
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    devinfo *d = calloc(n, sizeof *d);
    if (!pds || !d) {
        free(pds);
        free(d);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    vkEnumeratePhysicalDevices(inst, &n, pds);
    for (uint32_t i = 0; i < n; i++)
        read_devinfo(pds[i], api, &d[i]);
    free(pds);
    *out = d;
    return (int)n;
}

int kb_vk_list(FILE *f)
{
    char err[256], buf[1024];
    VkInstance inst;
    uint32_t api;
    if (make_instance(&inst, &api, err, sizeof err) != 0) {
        fprintf(f, "Vulkan unavailable: %s\n", err);
        return -1;
    }
    devinfo *d = NULL;
    int n = enum_devices(inst, api, &d, err, sizeof err);
    if (n < 0)
        fprintf(f, "Vulkan unavailable: %s\n", err);
    for (int i = 0; i < n; i++) {
        line(&d[i], i, buf, sizeof buf);
        fprintf(f, "%s\n", buf);
    }
    free(d);
    vkDestroyInstance(inst, NULL);
    return n;
}

/* ---- memory types ------------------------------------------------------------------------- */

static int find_mem(const struct kb_vk *vk, uint32_t bits, VkMemoryPropertyFlags need,
                    VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < vk->mem.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = vk->mem.memoryTypes[i].propertyFlags;
        if ((bits & (1u << i)) && (f & need) == need && !(f & avoid))
            return (int)i;
    }
    return -1;
}

/* Storage buffers: plain device-local on a discrete GPU (its host-visible device memory is a
 * small BAR window); on UMA devices (integrated, lavapipe) prefer device-local host-visible
 * coherent memory, so uploads and downloads are memcpy. */
static void choose_memory(struct kb_vk *vk)
{
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    int t = -1;
    if (vk->di.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU)
        t = find_mem(vk, ~0u, DL, HV);
    if (t < 0)
        t = find_mem(vk, ~0u, DL | HV | HC, 0);
    if (t < 0)
        t = find_mem(vk, ~0u, DL, 0);
    if (t < 0)
        t = 0;
    vk->mem_dev = (uint32_t)t;
    int s = find_mem(vk, ~0u, HV | HC | CA, 0);
    if (s < 0)
        s = find_mem(vk, ~0u, HV | HC, 0);
    vk->mem_staging = s < 0 ? 0 : (uint32_t)s;
}

/* ---- context ------------------------------------------------------------------------------ */

static void fill_limits(struct kb_vk *vk)
{
    const devinfo *d = &vk->di;
    const VkPhysicalDeviceLimits *l = &d->props.limits;
    kb_vk_limits *o = &vk->lim;
    o->subgroup_size = d->sg.subgroupSize ? d->sg.subgroupSize : 1;
    o->subgroup_min = o->subgroup_size;
    if (d->api >= VK_API_VERSION_1_3 && d->sc.minSubgroupSize &&
        (d->sc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT))
        o->subgroup_min = umin32(d->sc.minSubgroupSize, o->subgroup_size);
    o->subgroup_arith = (d->sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (d->sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                        (d->sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
    o->max_wg_invocations = l->maxComputeWorkGroupInvocations;
    o->max_wg_size_x = l->maxComputeWorkGroupSize[0];
    for (int i = 0; i < 3; i++)
        o->max_wg_count[i] = l->maxComputeWorkGroupCount[i];
    o->max_shared_bytes = l->maxComputeSharedMemorySize;
    o->max_storage_range = l->maxStorageBufferRange;
    o->storage_align = l->minStorageBufferOffsetAlignment ? l->minStorageBufferOffsetAlignment : 1;
    uint64_t mb = d->m3.maxMemoryAllocationSize ? d->m3.maxMemoryAllocationSize : UINT64_MAX;
    if (d->api >= VK_API_VERSION_1_3 && d->m4.maxBufferSize)
        mb = umin64(mb, d->m4.maxBufferSize);
    uint32_t heap = vk->mem.memoryTypes[vk->mem_dev].heapIndex;
    o->max_buffer_bytes = umin64(mb, vk->mem.memoryHeaps[heap].size);
    o->timestamps = vk->ts_mask != 0 && l->timestampPeriod > 0;
    o->is_cpu = d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    o->float16 = vk->float16;
    o->storage16 = vk->storage16;
    const int sg_shuffle_vote = (d->sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                                (d->sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
                                (d->sg.supportedOperations & VK_SUBGROUP_FEATURE_VOTE_BIT);
    o->coopmat_nv = vk->coopmat_nv && sg_shuffle_vote;
    o->coopmat_khr = vk->coopmat_khr && sg_shuffle_vote;
}

static int pick_device(devinfo *d, int n, int index, char *err, size_t errlen)
{
    if (index >= n || index < -1) {
        int k = snprintf(err, errlen, "Vulkan device %d does not exist; devices:", index);
        for (int i = 0; i < n && k > 0 && (size_t)k < errlen; i++) {
            char b[1024];
            line(&d[i], i, b, sizeof b);
            k += snprintf(err + k, errlen - (size_t)k, " [%s]", b);
        }
        return -1;
    }
    if (index >= 0)
        return index;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (type_rank(d[i].props.deviceType) < type_rank(d[best].props.deviceType))
            best = i;
    return best;
}

/* Whether the device lists f16 x f16 + f32 -> f32 products of 16x16x16 at subgroup scope
 * among its cooperative-matrix shapes (what attn_cm.coopmat.comp uses). */
static int coopmat_nv_f16_16x16(const struct kb_vk *vk)
{
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            vk->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get || get(vk->di.pd, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    int found = 0;
    if (get(vk->di.pd, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
                    p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return found;
}

#ifdef VK_KHR_cooperative_matrix
/* The same for VK_KHR_cooperative_matrix (attn_cm_khr.coopmat_khr.comp), in compute shaders; a
 * shape that demands saturating accumulation does not fit a shader that does not ask for it. */
static int coopmat_khr_f16_16x16(const struct kb_vk *vk)
{
    VkPhysicalDeviceCooperativeMatrixPropertiesKHR cp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_KHR};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &cp};
    vkGetPhysicalDeviceProperties2(vk->di.pd, &p2);
    if (!(cp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT))
        return 0;
    if (getenv("KB_VK_COOPMAT_KHR_ANY_SHAPE"))
        return 1;
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr(
            vk->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0;
    if (!get || get(vk->di.pd, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkCooperativeMatrixPropertiesKHR *p = calloc(n, sizeof *p);
    if (!p)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
    int found = 0;
    if (get(vk->di.pd, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
                    p[i].AType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                    p[i].BType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                    p[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                    !p[i].saturatingAccumulation && p[i].scope == VK_SCOPE_SUBGROUP_KHR;
    free(p);
    return found;
}
#endif

static int has_extension(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *e = calloc(n ? n : 1, sizeof *e);
    int found = 0;
    if (e && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return found;
}

static int pick_queue(struct kb_vk *vk, char *err, size_t errlen)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->di.pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    vkGetPhysicalDeviceQueueFamilyProperties(vk->di.pd, &n, q);
    int best = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0)
            continue;
        /* The first compute family with timestamps (the universal queue on most drivers). */
        if (best < 0 || (q[best].timestampValidBits == 0 && q[i].timestampValidBits > 0))
            best = (int)i;
    }
    if (best < 0) {
        free(q);
        seterr(err, errlen, "%s has no compute queue", vk->di.props.deviceName);
        return -1;
    }
    vk->qfam = (uint32_t)best;
    uint32_t bits = q[best].timestampValidBits;
    vk->ts_mask = bits >= 64 ? ~0ull : bits == 0 ? 0 : (1ull << bits) - 1;
    free(q);
    return 0;
}

static void describe(struct kb_vk *vk)
{
    char drv[520];
    driver_text(&vk->di, drv, sizeof drv);
    uint32_t v = vk->di.props.apiVersion;
    char ts[64];
    if (vk->lim.timestamps)
        snprintf(ts, sizeof ts, "timestamp period %.3g ns", vk->di.props.limits.timestampPeriod);
    else
        snprintf(ts, sizeof ts, "no timestamps (wall time)");
    snprintf(vk->desc, sizeof vk->desc, "%s (%s) | %s | Vulkan %u.%u.%u | subgroup %u | %s",
             vk->di.props.deviceName, type_name(vk->di.props.deviceType), drv,
             VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v),
             vk->lim.subgroup_size, ts);
}

int kb_vk_create_fault(void) { return create_fault; }

struct kb_vk *kb_vk_create(int device_index, char *err, size_t errlen)
{
    create_fault = 0;
    struct kb_vk *vk = calloc(1, sizeof *vk);
    if (!vk) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (make_instance(&vk->inst, &vk->inst_api, err, errlen) != 0) {
        free(vk);
        return NULL;
    }
    devinfo *d = NULL;
    int n = enum_devices(vk->inst, vk->inst_api, &d, err, errlen);
    int i = n < 0 ? -1 : pick_device(d, n, device_index, err, errlen);
    if (i < 0)
        goto fail;
    vk->di = d[i];
    free(d);
    d = NULL;
    if (vk->di.api < VK_API_VERSION_1_1) {
        seterr(err, errlen, "%s supports Vulkan 1.0 only; kbench needs 1.1",
               vk->di.props.deviceName);
        goto fail;
    }
    if (pick_queue(vk, err, errlen) != 0)
        goto fail;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = vk->qfam,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci};
    const char *exts[3];
    uint32_t next = 0;
    /* Shader tuning aid: the driver's statistics (registers, spills) per pipeline. */
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pef = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    const char *ext_stats = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
    if (getenv("KB_VK_PIPELINE_STATS") && has_extension(vk->di.pd, ext_stats)) {
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                        .pNext = &pef};
        vkGetPhysicalDeviceFeatures2(vk->di.pd, &f2);
        if (pef.pipelineExecutableInfo) {
            pef.pNext = NULL;
            dci.pNext = &pef;
            exts[next++] = ext_stats;
            vk->stats = 1;
        }
    }
    /* Optional shader features, each enabled when offered: f16 arithmetic (calibrate's f16
     * peak), and what the cooperative-matrix shaders need besides the extension (f16 storage
     * buffers, the Vulkan memory model). */
    VkPhysicalDeviceShaderFloat16Int8Features f16f = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
#ifdef VK_KHR_cooperative_matrix
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cmk = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
#endif
    int khr_enabled = 0; /* VK_KHR_cooperative_matrix is the last extension and chain link */
    if (vk->di.api >= VK_API_VERSION_1_2) {
        const int has_cm = has_extension(vk->di.pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
        void *query = NULL; /* the optional structures of the extensions the device has */
#ifdef VK_KHR_cooperative_matrix
        const int has_cmk = has_extension(vk->di.pd, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
        if (has_cmk)
            query = &cmk;
#endif
        if (has_cm) {
            cmf.pNext = query;
            query = &cmf;
        }
        f16f.pNext = &s16;
        s16.pNext = &vmm;
        vmm.pNext = query;
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                        .pNext = &f16f};
        vkGetPhysicalDeviceFeatures2(vk->di.pd, &f2);
        /* enable exactly what is needed of each structure, and nothing else */
        f16f.shaderInt8 = VK_FALSE;
        s16.uniformAndStorageBuffer16BitAccess = VK_FALSE;
        s16.storagePushConstant16 = VK_FALSE;
        s16.storageInputOutput16 = VK_FALSE;
        vmm.vulkanMemoryModelDeviceScope = VK_FALSE;
        vmm.vulkanMemoryModelAvailabilityVisibilityChains = VK_FALSE;
        cmf.cooperativeMatrixRobustBufferAccess = VK_FALSE;
        vk->float16 = f16f.shaderFloat16 == VK_TRUE;
        vk->storage16 = s16.storageBuffer16BitAccess == VK_TRUE;
        vk->coopmat_nv = has_cm && cmf.cooperativeMatrix && f16f.shaderFloat16 &&
                         s16.storageBuffer16BitAccess && vmm.vulkanMemoryModel &&
                         coopmat_nv_f16_16x16(vk);
        void *chain = (void *)dci.pNext;
        f16f.pNext = chain;
        s16.pNext = &f16f;
        vmm.pNext = &s16;
        chain = &vmm;
        if (has_cm && cmf.cooperativeMatrix) {
            cmf.pNext = chain;
            chain = &cmf;
            exts[next++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        }
#ifdef VK_KHR_cooperative_matrix
        /* what attn_cm_khr.coopmat_khr.comp's SPIR-V declares: Float16, VulkanMemoryModel */
        cmk.cooperativeMatrixRobustBufferAccess = VK_FALSE;
        vk->coopmat_khr = has_cmk && cmk.cooperativeMatrix && f16f.shaderFloat16 &&
                          vmm.vulkanMemoryModel && coopmat_khr_f16_16x16(vk);
        if (has_cmk && cmk.cooperativeMatrix) {
            cmk.pNext = chain;
            chain = &cmk;
            exts[next++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
            khr_enabled = 1;
        }
#endif
        dci.pNext = chain;
    }
    dci.enabledExtensionCount = next;
    dci.ppEnabledExtensionNames = next ? exts : NULL;
    VkResult r = vkCreateDevice(vk->di.pd, &dci, NULL, &vk->dev);
#ifdef VK_KHR_cooperative_matrix
    if (r != VK_SUCCESS && khr_enabled) {
        /* No rule forbids the NV and KHR cooperative matrices together, but a device that
         * refuses them must still run everything else: again without the KHR one. */
        dci.pNext = cmk.pNext;
        dci.enabledExtensionCount = --next;
        dci.ppEnabledExtensionNames = next ? exts : NULL;
        vk->coopmat_khr = 0;
        r = vkCreateDevice(vk->di.pd, &dci, NULL, &vk->dev);
    }
#endif
    (void)khr_enabled;
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkCreateDevice(%s) failed: %s", vk->di.props.deviceName, vkres(r));
        create_fault = 1;
        goto fail;
    }
    vkGetDeviceQueue(vk->dev, vk->qfam, 0, &vk->queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = vk->qfam};
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateCommandPool(vk->dev, &pci, NULL, &vk->pool)) != VK_SUCCESS ||
        (r = vkCreateFence(vk->dev, &fci, NULL, &vk->fence)) != VK_SUCCESS) {
        seterr(err, errlen, "command pool / fence: %s", vkres(r));
        create_fault = 1;
        goto fail;
    }
    vkGetPhysicalDeviceMemoryProperties(vk->di.pd, &vk->mem);
    choose_memory(vk);
    fill_limits(vk);
    describe(vk);
    return vk;
fail:
    free(d);
    kb_vk_destroy(vk);
    return NULL;
}

void kb_vk_destroy(struct kb_vk *vk)
{
    if (!vk)
        return;
    if (vk->dev) {
        vkDeviceWaitIdle(vk->dev);
        for (int i = 0; i < vk->npipes; i++) {
            kb_vk_pipe *p = vk->pipes[i];
            vkDestroyPipeline(vk->dev, p->pipe, NULL);
            vkDestroyPipelineLayout(vk->dev, p->layout, NULL);
            vkDestroyDescriptorSetLayout(vk->dev, p->dsl, NULL);
            vkDestroyShaderModule(vk->dev, p->mod, NULL);
            free(p);
        }
        kb_vk_buf_destroy(vk->staging);
        if (vk->fence)
            vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->pool)
            vkDestroyCommandPool(vk->dev, vk->pool, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    free(vk->pipes);
    if (vk->inst)
        vkDestroyInstance(vk->inst, NULL);
    free(vk);
}

const char *kb_vk_describe(const struct kb_vk *vk) { return vk ? vk->desc : "no Vulkan device"; }
const kb_vk_limits *kb_vk_get_limits(const struct kb_vk *vk) { return &vk->lim; }

/* ---- buffers ------------------------------------------------------------------------------ */

static kb_vk_buf *buf_make(struct kb_vk *vk, uint64_t bytes, uint32_t memtype, char *err,
                           size_t errlen)
{
    if (bytes == 0)
        bytes = 4;
    if (bytes > vk->lim.max_buffer_bytes) {
        seterr(err, errlen, "%.1f MiB buffer exceeds the device's %.1f MiB per buffer",
               (double)bytes / (1 << 20), (double)vk->lim.max_buffer_bytes / (1 << 20));
        return NULL;
    }
    kb_vk_buf *b = calloc(1, sizeof *b);
    if (!b) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    b->vk = vk;
    b->size = bytes;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = bytes,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(vk->dev, &bci, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkCreateBuffer(%llu bytes): %s", (unsigned long long)bytes, vkres(r));
        goto fail;
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    if (!(req.memoryTypeBits & (1u << memtype))) {
        int t = find_mem(vk, req.memoryTypeBits, vk->mem.memoryTypes[memtype].propertyFlags, 0);
        if (t < 0) {
            seterr(err, errlen, "no memory type fits a storage buffer");
            goto fail;
        }
        memtype = (uint32_t)t;
    }
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .allocationSize = req.size,
                                .memoryTypeIndex = memtype};
    r = vkAllocateMemory(vk->dev, &mai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkAllocateMemory(%.1f MiB): %s", (double)req.size / (1 << 20),
               vkres(r));
        goto fail;
    }
    vkBindBufferMemory(vk->dev, b->buf, b->mem, 0);
    VkMemoryPropertyFlags f = vk->mem.memoryTypes[memtype].propertyFlags;
    if ((f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)) {
        r = vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
        if (r != VK_SUCCESS)
            b->map = NULL; /* falls back to staging copies */
    }
    return b;
fail:
    kb_vk_buf_destroy(b);
    return NULL;
}

kb_vk_buf *kb_vk_buf_create(struct kb_vk *vk, uint64_t bytes, char *err, size_t errlen)
{
    return buf_make(vk, bytes, vk->mem_dev, err, errlen);
}

void kb_vk_buf_destroy(kb_vk_buf *b)
{
    if (!b)
        return;
    VkDevice dev = b->vk->dev;
    if (b->map)
        vkUnmapMemory(dev, b->mem);
    if (b->buf)
        vkDestroyBuffer(dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(dev, b->mem, NULL);
    free(b);
}

uint64_t kb_vk_buf_size(const kb_vk_buf *b) { return b->size; }

/* Records fn into a fresh command buffer, submits it and waits: the one-shot helper. */
static int one_shot(struct kb_vk *vk, void (*fn)(VkCommandBuffer, void *), void *arg, char *err,
                    size_t errlen)
{
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkCommandBuffer cb;
    VkResult r = vkAllocateCommandBuffers(vk->dev, &ai, &cb);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkAllocateCommandBuffers: %s", vkres(r));
        return -1;
    }
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    vkBeginCommandBuffer(cb, &bi);
    fn(cb, arg);
    vkEndCommandBuffer(cb);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &cb};
    vkResetFences(vk->dev, 1, &vk->fence);
    r = vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (r == VK_SUCCESS)
        r = vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, FENCE_TIMEOUT_NS);
    vkFreeCommandBuffers(vk->dev, vk->pool, 1, &cb);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "one-shot submit: %s", vkres(r));
        return -1;
    }
    return 0;
}

static void all_barrier(VkCommandBuffer cb)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

typedef struct copy_args {
    VkBuffer src, dst;
    VkBufferCopy region;
} copy_args;

static void rec_copy(VkCommandBuffer cb, void *arg)
{
    copy_args *a = arg;
    all_barrier(cb);
    vkCmdCopyBuffer(cb, a->src, a->dst, 1, &a->region);
    all_barrier(cb); /* host reads of staging, later dispatches */
}

static int get_staging(struct kb_vk *vk, char *err, size_t errlen)
{
    if (vk->staging)
        return 0;
    vk->staging = buf_make(vk, umin64(STAGING_BYTES, vk->lim.max_buffer_bytes), vk->mem_staging,
                           err, errlen);
    if (vk->staging && !vk->staging->map) {
        seterr(err, errlen, "staging memory is not host-visible");
        kb_vk_buf_destroy(vk->staging);
        vk->staging = NULL;
    }
    return vk->staging ? 0 : -1;
}

static int check_span(const kb_vk_buf *b, uint64_t off, uint64_t n, char *err, size_t errlen)
{
    if (off > b->size || n > b->size - off) {
        seterr(err, errlen, "copy of %llu bytes at %llu outside a %llu-byte buffer",
               (unsigned long long)n, (unsigned long long)off, (unsigned long long)b->size);
        return -1;
    }
    return 0;
}

int kb_vk_buf_write(kb_vk_buf *b, uint64_t off, const void *src, uint64_t n, char *err,
                    size_t errlen)
{
    if (check_span(b, off, n, err, errlen) != 0)
        return -1;
    if (b->map) {
        memcpy((char *)b->map + off, src, n);
        return 0;
    }
    struct kb_vk *vk = b->vk;
    if (get_staging(vk, err, errlen) != 0)
        return -1;
    for (uint64_t done = 0; done < n;) {
        uint64_t k = umin64(n - done, vk->staging->size);
        memcpy(vk->staging->map, (const char *)src + done, k);
        copy_args a = {vk->staging->buf, b->buf, {0, off + done, k}};
        if (one_shot(vk, rec_copy, &a, err, errlen) != 0)
            return -1;
        done += k;
    }
    return 0;
}

int kb_vk_buf_read(kb_vk_buf *b, uint64_t off, void *dst, uint64_t n, char *err, size_t errlen)
{
    if (check_span(b, off, n, err, errlen) != 0)
        return -1;
    if (b->map) {
        memcpy(dst, (const char *)b->map + off, n);
        return 0;
    }
    struct kb_vk *vk = b->vk;
    if (get_staging(vk, err, errlen) != 0)
        return -1;
    for (uint64_t done = 0; done < n;) {
        uint64_t k = umin64(n - done, vk->staging->size);
        copy_args a = {b->buf, vk->staging->buf, {off + done, 0, k}};
        if (one_shot(vk, rec_copy, &a, err, errlen) != 0)
            return -1;
        memcpy((char *)dst + done, vk->staging->map, k);
        done += k;
    }
    return 0;
}

kb_vk_buf *kb_vk_buf_from(struct kb_vk *vk, const void *src, uint64_t n, char *err,
                          size_t errlen)
{
    kb_vk_buf *b = kb_vk_buf_create(vk, n, err, errlen);
    if (b && kb_vk_buf_write(b, 0, src, n, err, errlen) != 0) {
        kb_vk_buf_destroy(b);
        b = NULL;
    }
    return b;
}

/* ---- pipelines ---------------------------------------------------------------------------- */

static void print_stat(const VkPipelineExecutableStatisticKHR *st)
{
    switch (st->format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
        fprintf(stderr, " %s=%s", st->name, st->value.b32 ? "true" : "false");
        break;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
        fprintf(stderr, " %s=%lld", st->name, (long long)st->value.i64);
        break;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
        fprintf(stderr, " %s=%llu", st->name, (unsigned long long)st->value.u64);
        break;
    default:
        fprintf(stderr, " %s=%g", st->name, st->value.f64);
    }
}

/* KB_VK_PIPELINE_STATS=1 prints the driver's statistics of each new pipeline to stderr;
 * =DIR also writes its internal representations (driver IR, ISA) to DIR. */
static void report_stats(struct kb_vk *vk, const kb_vk_pipe *p)
{
    PFN_vkGetPipelineExecutablePropertiesKHR gp = (PFN_vkGetPipelineExecutablePropertiesKHR)
        vkGetDeviceProcAddr(vk->dev, "vkGetPipelineExecutablePropertiesKHR");
    PFN_vkGetPipelineExecutableStatisticsKHR gs = (PFN_vkGetPipelineExecutableStatisticsKHR)
        vkGetDeviceProcAddr(vk->dev, "vkGetPipelineExecutableStatisticsKHR");
    PFN_vkGetPipelineExecutableInternalRepresentationsKHR gi =
        (PFN_vkGetPipelineExecutableInternalRepresentationsKHR)vkGetDeviceProcAddr(
            vk->dev, "vkGetPipelineExecutableInternalRepresentationsKHR");
    const char *dir = getenv("KB_VK_PIPELINE_STATS");
    if (!gp || !gs)
        return;
    VkPipelineInfoKHR pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, .pipeline = p->pipe};
    VkPipelineExecutablePropertiesKHR ep[4];
    uint32_t ne = 4;
    for (int i = 0; i < 4; i++)
        ep[i] = (VkPipelineExecutablePropertiesKHR){
            .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR};
    if (gp(vk->dev, &pi, &ne, ep) < 0)
        return;
    for (uint32_t e = 0; e < ne; e++) {
        fprintf(stderr, "kbench vk pipeline %zu-byte spv, spec {", p->spv_bytes);
        for (int i = 0; i < p->nspec; i++)
            fprintf(stderr, i ? ",%u" : "%u", p->spec[i]);
        fprintf(stderr, "} %s (subgroup %u):", ep[e].name, ep[e].subgroupSize);
        VkPipelineExecutableInfoKHR ei = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR,
                                          .pipeline = p->pipe,
                                          .executableIndex = e};
        VkPipelineExecutableStatisticKHR st[32];
        uint32_t ns = 32;
        for (int i = 0; i < 32; i++)
            st[i] = (VkPipelineExecutableStatisticKHR){
                .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
        if (gs(vk->dev, &ei, &ns, st) >= 0)
            for (uint32_t i = 0; i < ns; i++)
                print_stat(&st[i]);
        fprintf(stderr, "\n");
        VkPipelineExecutableInternalRepresentationKHR ir[8];
        uint32_t nr = 8;
        if (!gi || strcmp(dir, "1") == 0)
            continue;
        for (int i = 0; i < 8; i++)
            ir[i] = (VkPipelineExecutableInternalRepresentationKHR){
                .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR};
        if (gi(vk->dev, &ei, &nr, ir) < 0)
            continue;
        for (uint32_t i = 0; i < nr; i++) {
            ir[i].pData = malloc(ir[i].dataSize + 1);
            if (!ir[i].pData)
                ir[i].dataSize = 0;
        }
        gi(vk->dev, &ei, &nr, ir);
        for (uint32_t i = 0; i < nr; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/pipe%d_%u_%u.txt", dir, vk->npipes, e, i);
            FILE *f = ir[i].pData ? fopen(path, "w") : NULL;
            if (f) {
                fprintf(f, "%s: %s\n", ir[i].name, ir[i].description);
                fwrite(ir[i].pData, 1, ir[i].dataSize, f);
                fclose(f);
            }
            free(ir[i].pData);
        }
    }
}

static kb_vk_pipe *pipe_build(struct kb_vk *vk, const uint32_t *spv, size_t spv_bytes, int nbind,
                              uint32_t push_bytes, const uint32_t *spec, int nspec, char *err,
                              size_t errlen)
{
    kb_vk_pipe *p = calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    p->spv = spv;
    p->spv_bytes = spv_bytes;
    p->nbind = nbind;
    p->nspec = nspec;
    p->push_bytes = push_bytes;
    memcpy(p->spec, spec, (size_t)nspec * sizeof *spec);

    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = spv_bytes,
                                    .pCode = spv};
    VkDescriptorSetLayoutBinding lb[KB_VK_MAX_BIND];
    for (int i = 0; i < nbind; i++)
        lb[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                               .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                               .descriptorCount = 1,
                                               .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = (uint32_t)nbind,
        .pBindings = lb};
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &p->dsl,
                                      .pushConstantRangeCount = push_bytes ? 1 : 0,
                                      .pPushConstantRanges = &pr};
    VkSpecializationMapEntry me[16];
    for (int i = 0; i < nspec; i++)
        me[i] = (VkSpecializationMapEntry){(uint32_t)i, (uint32_t)(4 * i), 4};
    VkSpecializationInfo si = {(uint32_t)nspec, me, 4 * (size_t)nspec, p->spec};
    VkResult r;
    if ((r = vkCreateShaderModule(vk->dev, &mci, NULL, &p->mod)) != VK_SUCCESS ||
        (r = vkCreateDescriptorSetLayout(vk->dev, &dci, NULL, &p->dsl)) != VK_SUCCESS ||
        (r = vkCreatePipelineLayout(vk->dev, &lci, NULL, &p->layout)) != VK_SUCCESS) {
        seterr(err, errlen, "pipeline setup: %s", vkres(r));
        goto fail;
    }
    VkComputePipelineCreateInfo cci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .flags = vk->stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR |
                                 VK_PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR
                           : 0,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = p->mod,
                  .pName = "main",
                  .pSpecializationInfo = nspec ? &si : NULL},
        .layout = p->layout};
    r = vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &cci, NULL, &p->pipe);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkCreateComputePipelines: %s", vkres(r));
        goto fail;
    }
    if (vk->stats)
        report_stats(vk, p);
    return p;
fail:
    if (p->pipe)
        vkDestroyPipeline(vk->dev, p->pipe, NULL);
    if (p->layout)
        vkDestroyPipelineLayout(vk->dev, p->layout, NULL);
    if (p->dsl)
        vkDestroyDescriptorSetLayout(vk->dev, p->dsl, NULL);
    if (p->mod)
        vkDestroyShaderModule(vk->dev, p->mod, NULL);
    free(p);
    return NULL;
}

kb_vk_pipe *kb_vk_pipe_get(struct kb_vk *vk, const uint32_t *spv, size_t spv_bytes, int nbind,
                           uint32_t push_bytes, const uint32_t *spec, int nspec, char *err,
                           size_t errlen)
{
    if (nbind < 1 || nbind > KB_VK_MAX_BIND || nspec < 0 || nspec > 16 ||
        push_bytes > vk->di.props.limits.maxPushConstantsSize) {
        seterr(err, errlen, "pipeline: %d bindings, %d constants, %u push bytes unsupported",
               nbind, nspec, push_bytes);
        return NULL;
    }
    for (int i = 0; i < vk->npipes; i++) {
        kb_vk_pipe *p = vk->pipes[i];
        if (p->spv == spv && p->spv_bytes == spv_bytes && p->nbind == nbind &&
            p->push_bytes == push_bytes && p->nspec == nspec &&
            memcmp(p->spec, spec, (size_t)nspec * sizeof *spec) == 0)
            return p;
    }
    kb_vk_pipe **np = realloc(vk->pipes, (size_t)(vk->npipes + 1) * sizeof *np);
    if (!np) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    vk->pipes = np;
    kb_vk_pipe *p = pipe_build(vk, spv, spv_bytes, nbind, push_bytes, spec, nspec, err, errlen);
    if (p)
        vk->pipes[vk->npipes++] = p;
    return p;
}

/* ---- command lists ------------------------------------------------------------------------ */

struct kb_vk_cmd {
    struct kb_vk *vk;
    VkCommandBuffer cb;
    VkDescriptorPool dpool; /* the first pool; growing lists add more in xpools */
    VkDescriptorPool *xpools;
    int nxpools;
    int per_pool;  /* descriptor sets per pool */
    int grow;      /* 1: add pools on demand (kb_vk_cmd_create_marked) */
    VkQueryPool qpool; /* start, end, then max_marks marks; VK_NULL_HANDLE without timestamps */
    int max_marks, nmarks;
    int max, n, ended;
};

static VkResult make_dpool(struct kb_vk *vk, int sets, VkDescriptorPool *dp)
{
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, (uint32_t)sets * KB_VK_MAX_BIND};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = (uint32_t)sets,
                                      .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    return vkCreateDescriptorPool(vk->dev, &dpi, NULL, dp);
}

/* Starts recording: a barrier that makes uploads and earlier lists visible, the start stamp. */
static void cmd_begin(kb_vk_cmd *c)
{
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    vkBeginCommandBuffer(c->cb, &bi);
    all_barrier(c->cb); /* uploads and earlier lists are visible */
    if (c->qpool) {
        vkCmdResetQueryPool(c->cb, c->qpool, 0, 2 + (uint32_t)c->max_marks);
        vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, c->qpool, 0);
    }
}

static kb_vk_cmd *cmd_create(struct kb_vk *vk, int max_dispatches, int grow, int max_marks,
                             char *err, size_t errlen)
{
    kb_vk_cmd *c = calloc(1, sizeof *c);
    if (!c || max_dispatches < 1 || max_marks < 0) {
        free(c);
        seterr(err, errlen, !c ? "out of memory" : "no dispatches");
        return NULL;
    }
    c->vk = vk;
    c->grow = grow;
    c->per_pool = max_dispatches;
    c->max = grow ? INT32_MAX : max_dispatches;
    c->max_marks = max_marks;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkResult r;
    if ((r = make_dpool(vk, max_dispatches, &c->dpool)) != VK_SUCCESS ||
        (r = vkAllocateCommandBuffers(vk->dev, &ai, &c->cb)) != VK_SUCCESS) {
        seterr(err, errlen, "command list: %s", vkres(r));
        goto fail;
    }
    if (vk->lim.timestamps) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = 2 + (uint32_t)max_marks};
        if ((r = vkCreateQueryPool(vk->dev, &qi, NULL, &c->qpool)) != VK_SUCCESS) {
            seterr(err, errlen, "vkCreateQueryPool: %s", vkres(r));
            goto fail;
        }
    }
    cmd_begin(c);
    return c;
fail:
    kb_vk_cmd_destroy(c);
    return NULL;
}

kb_vk_cmd *kb_vk_cmd_create(struct kb_vk *vk, int max_dispatches, char *err, size_t errlen)
{
    return cmd_create(vk, max_dispatches, 0, 0, err, errlen);
}

kb_vk_cmd *kb_vk_cmd_create_marked(struct kb_vk *vk, int max_marks, char *err, size_t errlen)
{
    return cmd_create(vk, 256, 1, max_marks, err, errlen);
}

/* The descriptor pool of the next dispatch: a growing list adds one when the last is full. */
static VkDescriptorPool next_dpool(kb_vk_cmd *c, char *err, size_t errlen)
{
    const int k = c->n / c->per_pool;
    if (k == 0)
        return c->dpool;
    if (k - 1 < c->nxpools)
        return c->xpools[k - 1];
    VkDescriptorPool *np = realloc(c->xpools, sizeof *np * (size_t)(c->nxpools + 1));
    if (!np) {
        seterr(err, errlen, "out of memory");
        return VK_NULL_HANDLE;
    }
    c->xpools = np;
    VkResult r = make_dpool(c->vk, c->per_pool, &np[c->nxpools]);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "descriptor pool: %s", vkres(r));
        return VK_NULL_HANDLE;
    }
    return np[c->nxpools++];
}

int kb_vk_cmd_dispatch(kb_vk_cmd *c, const kb_vk_pipe *p, const kb_vk_bind *binds,
                       const void *push, uint32_t gx, uint32_t gy, uint32_t gz, char *err,
                       size_t errlen)
{
    struct kb_vk *vk = c->vk;
    const kb_vk_limits *L = &vk->lim;
    if (c->ended || c->n >= c->max) {
        seterr(err, errlen, "command list: %s", c->ended ? "already ended" : "too many dispatches");
        return -1;
    }
    if (gx == 0 || gy == 0 || gz == 0 || gx > L->max_wg_count[0] || gy > L->max_wg_count[1] ||
        gz > L->max_wg_count[2]) {
        seterr(err, errlen, "dispatch %ux%ux%u outside the device's %ux%ux%u workgroups", gx, gy,
               gz, L->max_wg_count[0], L->max_wg_count[1], L->max_wg_count[2]);
        return -1;
    }
    VkDescriptorBufferInfo bi[KB_VK_MAX_BIND];
    VkWriteDescriptorSet w[KB_VK_MAX_BIND];
    VkDescriptorPool dp = next_dpool(c, err, errlen);
    if (dp == VK_NULL_HANDLE)
        return -1;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = dp,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &p->dsl};
    VkDescriptorSet set;
    for (int i = 0; i < p->nbind; i++) {
        const kb_vk_bind *b = &binds[i];
        uint64_t range = b->range ? b->range : b->buf->size - b->offset;
        if (b->offset % L->storage_align != 0 || b->offset > b->buf->size ||
            range > b->buf->size - b->offset || range > L->max_storage_range) {
            seterr(err, errlen,
                   "binding %d: offset %llu range %llu (buffer %llu, align %llu, max range %llu)",
                   i, (unsigned long long)b->offset, (unsigned long long)range,
                   (unsigned long long)b->buf->size, (unsigned long long)L->storage_align,
                   (unsigned long long)L->max_storage_range);
            return -1;
        }
        bi[i] = (VkDescriptorBufferInfo){b->buf->buf, b->offset, range};
    }
    VkResult r = vkAllocateDescriptorSets(vk->dev, &ai, &set);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkAllocateDescriptorSets: %s", vkres(r));
        return -1;
    }
    for (int i = 0; i < p->nbind; i++)
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    vkUpdateDescriptorSets(vk->dev, (uint32_t)p->nbind, w, 0, NULL);
    vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    vkCmdBindDescriptorSets(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (p->push_bytes)
        vkCmdPushConstants(c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_bytes, push);
    vkCmdDispatch(c->cb, gx, gy, gz);
    c->n++;
    return 0;
}

void kb_vk_cmd_barrier(kb_vk_cmd *c)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

int kb_vk_cmd_end(kb_vk_cmd *c, char *err, size_t errlen)
{
    if (c->ended)
        return 0;
    if (c->qpool)
        vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, 1);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(c->cb);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "vkEndCommandBuffer: %s", vkres(r));
        return -1;
    }
    c->ended = 1;
    return 0;
}

int kb_vk_cmd_submit(kb_vk_cmd *c, double *seconds, char *err, size_t errlen)
{
    struct kb_vk *vk = c->vk;
    if (!c->ended && kb_vk_cmd_end(c, err, errlen) != 0)
        return -1;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &c->cb};
    vkResetFences(vk->dev, 1, &vk->fence);
    double t0 = now_s();
    VkResult r = vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (r == VK_SUCCESS)
        r = vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, FENCE_TIMEOUT_NS);
    double wall = now_s() - t0;
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "submit: %s", vkres(r));
        return -1;
    }
    if (!seconds)
        return 0;
    *seconds = wall;
    if (c->qpool) {
        uint64_t ts[2];
        r = vkGetQueryPoolResults(vk->dev, c->qpool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (r != VK_SUCCESS) {
            seterr(err, errlen, "vkGetQueryPoolResults: %s", vkres(r));
            return -1;
        }
        uint64_t ticks = (ts[1] - ts[0]) & vk->ts_mask;
        *seconds = (double)ticks * (double)vk->di.props.limits.timestampPeriod * 1e-9;
    }
    return 0;
}

void kb_vk_cmd_destroy(kb_vk_cmd *c)
{
    if (!c)
        return;
    VkDevice dev = c->vk->dev;
    if (c->cb)
        vkFreeCommandBuffers(dev, c->vk->pool, 1, &c->cb);
    if (c->dpool)
        vkDestroyDescriptorPool(dev, c->dpool, NULL);
    for (int i = 0; i < c->nxpools; i++)
        vkDestroyDescriptorPool(dev, c->xpools[i], NULL);
    free(c->xpools);
    if (c->qpool)
        vkDestroyQueryPool(dev, c->qpool, NULL);
    free(c);
}

/* ---- recording many kernels into one list ------------------------------------------------- */

int kb_vk_cmd_mark(kb_vk_cmd *c)
{
    if (!c->qpool || c->ended || c->nmarks >= c->max_marks)
        return -1;
    vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool,
                        2 + (uint32_t)c->nmarks);
    return c->nmarks++;
}

int kb_vk_cmd_mark_times(kb_vk_cmd *c, double *sec, int n, char *err, size_t errlen)
{
    struct kb_vk *vk = c->vk;
    if (!c->qpool || n > c->nmarks || n < 0) {
        seterr(err, errlen, "%d marks asked, %d recorded%s", n, c->nmarks,
               c->qpool ? "" : " (no timestamps)");
        return -1;
    }
    uint64_t *ts = malloc(sizeof *ts * (size_t)(n + 2));
    if (!ts) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    VkResult r = vkGetQueryPoolResults(vk->dev, c->qpool, 0, (uint32_t)n + 2,
                                       sizeof *ts * (size_t)(n + 2), ts, sizeof ts[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS) {
        free(ts);
        seterr(err, errlen, "vkGetQueryPoolResults: %s", vkres(r));
        return -1;
    }
    const double tick = (double)vk->di.props.limits.timestampPeriod * 1e-9;
    for (int i = 0; i < n; i++)
        sec[i] = (double)((ts[2 + i] - ts[0]) & vk->ts_mask) * tick;
    free(ts);
    return 0;
}

int kb_vk_cmd_reset(kb_vk_cmd *c, char *err, size_t errlen)
{
    struct kb_vk *vk = c->vk;
    VkResult r = vkResetCommandBuffer(c->cb, 0);
    if (r == VK_SUCCESS)
        r = vkResetDescriptorPool(vk->dev, c->dpool, 0);
    for (int i = 0; i < c->nxpools && r == VK_SUCCESS; i++)
        r = vkResetDescriptorPool(vk->dev, c->xpools[i], 0);
    if (r != VK_SUCCESS) {
        seterr(err, errlen, "command list reset: %s", vkres(r));
        return -1;
    }
    c->n = c->nmarks = c->ended = 0;
    cmd_begin(c);
    return 0;
}

int kb_vk_cmd_update(kb_vk_cmd *c, kb_vk_buf *b, uint64_t off, const void *data, uint64_t n,
                     char *err, size_t errlen)
{
    if (c->ended || n == 0 || n > 65536 || n % 4 || off % 4) {
        seterr(err, errlen, "update of %llu bytes at %llu: %s", (unsigned long long)n,
               (unsigned long long)off,
               c->ended ? "the list has ended" : "1 to 65536 bytes, multiples of 4");
        return -1;
    }
    if (check_span(b, off, n, err, errlen) != 0)
        return -1;
    all_barrier(c->cb); /* earlier readers of the range are done */
    vkCmdUpdateBuffer(c->cb, b->buf, off, n, data);
    all_barrier(c->cb); /* later dispatches see the data */
    return 0;
}

int kb_vk_cmd_copy(kb_vk_cmd *c, kb_vk_buf *src, uint64_t soff, kb_vk_buf *dst, uint64_t doff,
                   uint64_t n, char *err, size_t errlen)
{
    if (c->ended) {
        seterr(err, errlen, "command list: already ended");
        return -1;
    }
    if (check_span(src, soff, n, err, errlen) || check_span(dst, doff, n, err, errlen))
        return -1;
    copy_args a = {src->buf, dst->buf, {soff, doff, n}};
    rec_copy(c->cb, &a);
    return 0;
}

int kb_vk_cmd_dispatches(const kb_vk_cmd *c) { return c->n; }

kb_vk_buf *kb_vk_buf_create_host(struct kb_vk *vk, uint64_t bytes, char *err, size_t errlen)
{
    kb_vk_buf *b = buf_make(vk, bytes, vk->mem_staging, err, errlen);
    if (b && !b->map) {
        seterr(err, errlen, "host-visible memory could not be mapped");
        kb_vk_buf_destroy(b);
        return NULL;
    }
    return b;
}

const void *kb_vk_buf_map(const kb_vk_buf *b) { return b->map; }

/* ---- the general form on top of the recording form ---------------------------------------- */

typedef struct rec_state {
    kb_vk_buf *in[KB_MAX_TENSORS], *out[KB_MAX_TENSORS], *scratch;
    uint64_t obytes[KB_MAX_TENSORS]; /* payload + guard */
    int n_out;
    kb_vk_cmd *cmd;
} rec_state;

void kb_vk_rec_release(void *state)
{
    rec_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    for (int i = 0; i < KB_MAX_TENSORS; i++) {
        kb_vk_buf_destroy(s->in[i]);
        kb_vk_buf_destroy(s->out[i]);
    }
    kb_vk_buf_destroy(s->scratch);
    free(s);
}

void *kb_vk_rec_prepare(const kb_impl *impl, const kb_env *env, const kb_case *c,
                        const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    kb_tensor din[KB_MAX_TENSORS], dout[KB_MAX_TENSORS];
    int n_in = 0, n_out = 0;
    if (c->fam->describe(c->p, din, &n_in, dout, &n_out) != 0) {
        seterr(err, errlen, "%s: the family cannot describe this shape", c->fam->name);
        return NULL;
    }
    rec_state *s = calloc(1, sizeof *s);
    if (!s) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    s->n_out = n_out;
    kb_vk_bind bin[KB_MAX_TENSORS], bout[KB_MAX_TENSORS], bscr = {0};
    for (int i = 0; i < n_in; i++) {
        const uint64_t lay = impl->rec_layout ? impl->rec_layout(env, c, i) : 0;
        const uint64_t pad = impl->rec_pad ? impl->rec_pad(env, c, i) : 0;
        if (lay == KB_REC_FOLDED) {
            bin[i] = (kb_vk_bind){0};
        } else if (lay) {
            if (!(s->in[i] = kb_vk_buf_create(vk, lay, err, errlen)))
                goto fail;
            bin[i] = (kb_vk_bind){s->in[i], 0, lay};
            if (impl->rec_upload(env, c, i, in, &bin[i], err, errlen) != 0)
                goto fail;
        } else {
            if (!(s->in[i] = kb_vk_buf_create(vk, in[i].bytes + pad, err, errlen)) ||
                kb_vk_buf_write(s->in[i], 0, in[i].data, in[i].bytes, err, errlen) != 0)
                goto fail;
            if (pad) { /* the padding a kernel reads: zeros */
                void *z = calloc(1, pad);
                int rc = z ? kb_vk_buf_write(s->in[i], in[i].bytes, z, pad, err, errlen) : -1;
                free(z);
                if (rc != 0)
                    goto fail;
            }
            bin[i] = (kb_vk_bind){s->in[i], 0, in[i].bytes};
        }
    }
    for (int o = 0; o < n_out; o++) {
        s->obytes[o] = out[o].bytes + KB_GUARD_BYTES;
        if (!(s->out[o] = kb_vk_buf_from(vk, out[o].data, s->obytes[o], err, errlen)))
            goto fail;
        bout[o] = (kb_vk_bind){s->out[o], 0, out[o].bytes};
    }
    const uint64_t scr = impl->rec_scratch ? impl->rec_scratch(env, c) : 0;
    if (scr) {
        if (!(s->scratch = kb_vk_buf_create(vk, scr, err, errlen)))
            goto fail;
        bscr = (kb_vk_bind){s->scratch, 0, scr};
    }
    if (!(s->cmd = kb_vk_cmd_create_marked(vk, 0, err, errlen)) ||
        impl->record(env, c, s->cmd, bin, bout, scr ? &bscr : NULL, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    kb_vk_rec_release(s);
    return NULL;
}

int kb_vk_rec_run(void *state, const kb_env *env, double *gpu_seconds)
{
    rec_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copies too (kb_impl.reset). */
int kb_vk_rec_reset(void *state, const kb_tensor *out)
{
    rec_state *s = state;
    char err[256];
    for (int o = 0; o < s->n_out; o++)
        if (kb_vk_buf_write(s->out[o], 0, out[o].data, s->obytes[o], err, sizeof err) != 0) {
            fprintf(stderr, "vk reset: %s\n", err);
            return -1;
        }
    return 0;
}

int kb_vk_rec_finish(void *state, kb_tensor *out)
{
    rec_state *s = state;
    char err[256];
    for (int o = 0; o < s->n_out; o++)
        if (kb_vk_buf_read(s->out[o], 0, out[o].data, s->obytes[o], err, sizeof err) != 0) {
            fprintf(stderr, "vk: %s\n", err);
            return -1;
        }
    return 0;
}
