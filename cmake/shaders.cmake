# Shaders: the compiler, the optional variants it can build, and the build rules.
#
# kb_find_glslang: Debian 13's glslang 15 in .toolchain/glslang15 (scripts/install-deps.sh puts
# it there, with Debian 13's Vulkan headers) when it runs, else Debian 12's glslangValidator.
# Sets KB_GLSLANG (the command, empty when none), KB_GLSLANG_VERSION, and KB_VK_HEADERS (the
# include directory of the newer Vulkan headers, empty when the system's are used).
# -DKB_GLSLANG15=OFF ignores the newer compiler.
#
# kb_add_shaders compiles every kernels/vulkan/<group>/*.comp to SPIR-V at build time and embeds
# it as a C array: <build>/shaders/<name>.spv.h declares `static const uint32_t kb_spv_<name>[]`
# (name: the file name up to its first dot, unique across groups). A shader includes *.glsl files
# by bare name from any group folder (kernels/vulkan/common/ for what several groups share).
# Optional shader variants, by file name; each is built only when the compiler compiles a probe
# shader using its extension (and, for the host code, the Vulkan headers know the extension);
# the target then gets the definition, and the implementations say "not built" otherwise:
#   *.coopmat.comp      GL_NV_cooperative_matrix   KB_HAVE_COOPMAT_NV    (glslang 12 has it)
#   *.coopmat_khr.comp  GL_KHR_cooperative_matrix  KB_HAVE_COOPMAT_KHR   (glslang 15)
#   *.coopmat2.comp     GL_NV_cooperative_matrix2  KB_HAVE_COOPMAT2_NV   (glslang 15; SPIR-V 1.6,
#                       --target-env vulkan1.3: local_size_x_id then needs maintenance4, so give
#                       such shaders a fixed local size)
# Every shader is checked by the SPIR-V validator (glslang --spirv-val) as it is compiled.
# kb_write_build_info writes <build>/generated/kb_build_info.h: the compiler and a row per variant
# (built, or why not) for `kbench --list`.

option(KB_GLSLANG15 "Use Debian 13's glslang from .toolchain/glslang15 when present" ON)

set(KB_VARIANTS coopmat coopmat_khr coopmat2)
set(KB_VARIANT_coopmat_EXT GL_NV_cooperative_matrix)
set(KB_VARIANT_coopmat_HOST VK_NV_cooperative_matrix)
set(KB_VARIANT_coopmat_DEF KB_HAVE_COOPMAT_NV)
set(KB_VARIANT_coopmat_ENV vulkan1.2)
set(KB_VARIANT_coopmat_PROBE "#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer B { float16_t b[]; };
shared float s[256];
void main() {
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a;
  fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> c = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
  coopMatLoadNV(a, b, 0, 16, false);
  c = coopMatMulAddNV(a, a, c);
  coopMatStoreNV(c, s, 0, 16, false);
}
")
set(KB_VARIANT_coopmat_khr_EXT GL_KHR_cooperative_matrix)
set(KB_VARIANT_coopmat_khr_HOST VK_KHR_cooperative_matrix)
set(KB_VARIANT_coopmat_khr_DEF KB_HAVE_COOPMAT_KHR)
set(KB_VARIANT_coopmat_khr_ENV vulkan1.2)
set(KB_VARIANT_coopmat_khr_PROBE "#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer B { uvec4 b[]; };
shared uvec4 s[64];
void main() {
  coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a;
  coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> m;
  coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> c =
      coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
  coopMatLoad(a, b, 0, 2, gl_CooperativeMatrixLayoutRowMajor);
  coopMatLoad(m, b, 0, 2, gl_CooperativeMatrixLayoutColumnMajor);
  c = coopMatMulAdd(a, m, c);
  coopMatStore(c, s, 0, 4, gl_CooperativeMatrixLayoutRowMajor);
}
")
set(KB_VARIANT_coopmat2_EXT GL_NV_cooperative_matrix2)
set(KB_VARIANT_coopmat2_HOST VK_NV_cooperative_matrix2)
set(KB_VARIANT_coopmat2_DEF KB_HAVE_COOPMAT2_NV)
set(KB_VARIANT_coopmat2_ENV vulkan1.3)
set(KB_VARIANT_coopmat2_PROBE "#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 128) in;
layout(std430, binding = 0) buffer B { float16_t b[]; };
layout(std430, binding = 1) buffer C { float c[]; };
void main() {
  tensorLayoutNV<2> t = createTensorLayoutNV(2);
  t = setTensorLayoutDimensionNV(t, 64, 64);
  coopmat<float16_t, gl_ScopeWorkgroup, 32, 16, gl_MatrixUseA> a;
  coopmat<float16_t, gl_ScopeWorkgroup, 16, 32, gl_MatrixUseB> m;
  coopmat<float, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseAccumulator> acc =
      coopmat<float, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseAccumulator>(0.0);
  coopMatLoadTensorNV(a, b, 0, sliceTensorLayoutNV(t, 0, 32, 0, 16));
  coopMatLoadTensorNV(m, b, 0, sliceTensorLayoutNV(t, 0, 16, 0, 32));
  acc = coopMatMulAdd(a, m, acc);
  coopMatStoreTensorNV(acc, c, 0, sliceTensorLayoutNV(t, 0, 32, 0, 32));
}
")

function(kb_find_glslang)
  set(tc ${CMAKE_SOURCE_DIR}/.toolchain/glslang15)
  set(cmd "")
  set(ver "")
  set(hdrs "")
  if(KB_GLSLANG15 AND EXISTS ${tc}/bin/glslang)
    execute_process(COMMAND ${tc}/bin/glslang --version RESULT_VARIABLE rc
                    OUTPUT_VARIABLE out ERROR_QUIET)
    if(rc EQUAL 0 AND out MATCHES "Glslang Version: [0-9]+:([0-9.]+)")
      set(cmd ${tc}/bin/glslang)
      set(ver ${CMAKE_MATCH_1})
    else()
      message(WARNING "${tc}/bin/glslang does not run (rerun scripts/install-deps.sh): "
                      "using Debian 12's glslangValidator")
    endif()
    if(EXISTS ${tc}/usr/include/vulkan/vulkan_core.h)
      set(hdrs ${tc}/usr/include)
    endif()
  endif()
  if(NOT cmd AND GLSLANG)
    execute_process(COMMAND ${GLSLANG} --version OUTPUT_VARIABLE out ERROR_QUIET)
    set(cmd ${GLSLANG})
    if(out MATCHES "Glslang Version: [0-9]+:([0-9.]+)")
      set(ver ${CMAKE_MATCH_1})
    endif()
  endif()
  if(cmd)
    message(STATUS "Shader compiler: ${cmd} (glslang ${ver})")
  endif()
  set(KB_GLSLANG "${cmd}" PARENT_SCOPE)
  set(KB_GLSLANG_VERSION "${ver}" PARENT_SCOPE)
  set(KB_VK_HEADERS "${hdrs}" PARENT_SCOPE)
endfunction()

# KB_VARIANT_<v>_BUILT (ON/OFF) and KB_VARIANT_<v>_WHY (why not) for every variant.
function(kb_probe_variants)
  if(KB_VK_HEADERS)
    set(core ${KB_VK_HEADERS}/vulkan/vulkan_core.h)
  else()
    set(core ${Vulkan_INCLUDE_DIR}/vulkan/vulkan_core.h)
  endif()
  foreach(v ${KB_VARIANTS})
    set(ext ${KB_VARIANT_${v}_EXT})
    set(probe ${CMAKE_BINARY_DIR}/cmake-probes/${v}.comp)
    file(WRITE ${probe} "#version 450\n${KB_VARIANT_${v}_PROBE}")
    execute_process(COMMAND ${KB_GLSLANG} -V --target-env ${KB_VARIANT_${v}_ENV} --quiet
                            -o ${probe}.spv ${probe}
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    set(host "")
    if(EXISTS ${core})
      file(STRINGS ${core} host REGEX "^#define ${KB_VARIANT_${v}_HOST} 1")
    endif()
    set(built OFF)
    if(NOT rc EQUAL 0)
      set(why "glslang ${KB_GLSLANG_VERSION} cannot compile ${ext}")
      if(NOT KB_GLSLANG15)
        string(APPEND why " (-DKB_GLSLANG15=OFF)")
      elseif(NOT KB_VK_HEADERS)
        string(APPEND why " (scripts/install-deps.sh fetches glslang 15; then reconfigure)")
      endif()
    elseif(NOT host)
      set(why "the Vulkan headers lack ${KB_VARIANT_${v}_HOST} (scripts/install-deps.sh)")
    else()
      set(built ON)
      set(why "")
    endif()
    set(KB_VARIANT_${v}_BUILT ${built} PARENT_SCOPE)
    set(KB_VARIANT_${v}_WHY "${why}" PARENT_SCOPE)
  endforeach()
endfunction()

function(kb_add_shaders target dir groups)
  set(comps)
  set(incs)
  set(incflags)
  foreach(g ${groups})
    file(GLOB c CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/${g}/*.comp)
    file(GLOB i CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/${g}/*.glsl)
    list(APPEND comps ${c})
    list(APPEND incs ${i})
    list(APPEND incflags -I${CMAKE_SOURCE_DIR}/${dir}/${g})
  endforeach()
  set(names)
  foreach(comp ${comps})
    get_filename_component(name ${comp} NAME_WE)
    if(name IN_LIST names)
      message(FATAL_ERROR "two shaders named ${name}: shader names must be unique across groups")
    endif()
    list(APPEND names ${name})
  endforeach()
  if(KB_VK_HEADERS)
    # before the system's /usr/include/vulkan: the KHR / NV2 structures
    target_include_directories(${target} BEFORE PUBLIC ${KB_VK_HEADERS})
  endif()
  kb_probe_variants()
  set(outs)
  foreach(v ${KB_VARIANTS})
    set(KB_VARIANT_${v}_BUILT ${KB_VARIANT_${v}_BUILT} PARENT_SCOPE)
    set(KB_VARIANT_${v}_WHY "${KB_VARIANT_${v}_WHY}" PARENT_SCOPE)
    set(KB_VARIANT_${v}_SHADERS "")
    set(KB_VARIANT_${v}_SHADERS "" PARENT_SCOPE)
    if(KB_VARIANT_${v}_BUILT)
      message(STATUS "glslang compiles ${KB_VARIANT_${v}_EXT}: building the *.${v}.comp shaders")
      target_compile_definitions(${target} PUBLIC ${KB_VARIANT_${v}_DEF}=1)
    else()
      message(STATUS "*.${v}.comp shaders not built: ${KB_VARIANT_${v}_WHY}")
    endif()
  endforeach()
  foreach(comp ${comps})
    get_filename_component(name ${comp} NAME_WE)
    get_filename_component(file ${comp} NAME)
    set(env vulkan1.2)
    set(skip OFF)
    foreach(v ${KB_VARIANTS})
      if(file MATCHES "\\.${v}\\.comp$")
        set(env ${KB_VARIANT_${v}_ENV})
        if(KB_VARIANT_${v}_BUILT)
          list(APPEND KB_VARIANT_${v}_SHADERS ${name})
          set(KB_VARIANT_${v}_SHADERS "${KB_VARIANT_${v}_SHADERS}" PARENT_SCOPE)
        else()
          set(skip ON)
        endif()
      endif()
    endforeach()
    if(skip)
      continue()
    endif()
    set(out ${CMAKE_BINARY_DIR}/shaders/${name}.spv.h)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/shaders
      COMMAND ${KB_GLSLANG} -V --target-env ${env} --spirv-val --quiet ${incflags}
              --vn kb_spv_${name} -o ${out} ${comp}
      # static, so that two host files may embed the same shader
      COMMAND sed -i "s/^const uint32_t/static const uint32_t/" ${out}
      DEPENDS ${comp} ${incs} ${KB_GLSLANG}
      COMMENT "glslang ${name}.comp"
      VERBATIM)
    list(APPEND outs ${out})
  endforeach()
  add_custom_target(${target}_shaders DEPENDS ${outs})
  add_dependencies(${target} ${target}_shaders)
endfunction()

# <build>/generated/kb_build_info.h for `kbench --list`: the shader compiler and, per variant,
# {file pattern, extension, built, shaders built or why not}. Rewritten only when it changes.
function(kb_write_build_info have_vulkan)
  set(t "/* Generated by cmake/shaders.cmake at configure time. */\n")
  if(have_vulkan)
    set(h "system")
    if(KB_VK_HEADERS)
      set(h "${KB_VK_HEADERS}")
    endif()
    string(APPEND t "#define KB_BUILD_GLSLANG \"${KB_GLSLANG} (glslang ${KB_GLSLANG_VERSION}); "
                    "Vulkan headers: ${h}\"\n")
  else()
    string(APPEND t "#define KB_BUILD_GLSLANG \"none: built without Vulkan\"\n")
  endif()
  string(APPEND t "#define KB_BUILD_SHADER_VARIANTS")
  set(sep " ")
  foreach(v ${KB_VARIANTS})
    if(NOT have_vulkan)
      set(built 0)
      set(what "built without Vulkan")
    elseif(KB_VARIANT_${v}_BUILT)
      set(built 1)
      set(what "${KB_VARIANT_${v}_SHADERS}")
      if(NOT what)
        set(what "(no shaders of this kind yet)")
      endif()
      string(REPLACE ";" " " what "${what}")
    else()
      set(built 0)
      set(what "${KB_VARIANT_${v}_WHY}")
    endif()
    string(REPLACE "\"" "'" what "${what}")
    string(APPEND t "${sep}\\\n    {\"*.${v}.comp\", \"${KB_VARIANT_${v}_EXT}\", ${built}, \"${what}\"}")
    set(sep ",")
  endforeach()
  string(APPEND t "\n")
  file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/generated/kb_build_info.h CONTENT "${t}" @ONLY)
endfunction()
