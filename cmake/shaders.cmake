# Compiles every kernels/vulkan/<group>/*.comp to SPIR-V at build time and embeds it as a C array:
# <build>/shaders/<name>.spv.h declares `static const uint32_t kb_spv_<name>[]` (name: the file
# name up to its first dot, unique across groups). A shader includes *.glsl files by bare name
# from any group folder (kernels/vulkan/common/ for what several groups share).
# Files named *.coopmat.comp use GL_NV_cooperative_matrix, an optional feature: they are built
# only when glslang compiles a probe shader with it (Debian 12's does; KHR is not required), and
# the target then gets KB_HAVE_COOPMAT_NV=1. Their implementations say "not built" otherwise.
function(kb_probe_coopmat_nv result)
  set(probe ${CMAKE_BINARY_DIR}/cmake-probes/coopmat_nv.comp)
  file(WRITE ${probe} "#version 450
#extension GL_NV_cooperative_matrix : require
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
  execute_process(COMMAND ${GLSLANG} -V --target-env vulkan1.2 --quiet -o ${probe}.spv ${probe}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    set(${result} ON PARENT_SCOPE)
  else()
    set(${result} OFF PARENT_SCOPE)
  endif()
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
  kb_probe_coopmat_nv(have_cm)
  if(have_cm)
    message(STATUS "glslang compiles GL_NV_cooperative_matrix: building the *.coopmat.comp shaders")
    target_compile_definitions(${target} PUBLIC KB_HAVE_COOPMAT_NV=1)
  else()
    message(STATUS "glslang lacks GL_NV_cooperative_matrix: cooperative-matrix shaders not built")
    list(FILTER comps EXCLUDE REGEX "\\.coopmat\\.comp$")
  endif()
  set(outs)
  foreach(comp ${comps})
    get_filename_component(name ${comp} NAME_WE)
    set(out ${CMAKE_BINARY_DIR}/shaders/${name}.spv.h)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/shaders
      COMMAND ${GLSLANG} -V --target-env vulkan1.2 --quiet ${incflags} --vn kb_spv_${name} -o ${out} ${comp}
      # static, so that two host files may embed the same shader
      COMMAND sed -i "s/^const uint32_t/static const uint32_t/" ${out}
      DEPENDS ${comp} ${incs}
      COMMENT "glslang ${name}.comp"
      VERBATIM)
    list(APPEND outs ${out})
  endforeach()
  add_custom_target(${target}_shaders DEPENDS ${outs})
  add_dependencies(${target} ${target}_shaders)
endfunction()
