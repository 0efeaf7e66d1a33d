# Compiles every kernels/vulkan/*.comp to SPIR-V at build time and embeds it as a C array:
# <build>/shaders/<name>.spv.h declares `static const uint32_t kb_spv_<name>[]`.
# Files named *.coopmat.comp need GL_NV_cooperative_matrix: built only when glslang accepts them.
function(kb_add_shaders target dir)
  file(GLOB comps CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/*.comp)
  file(GLOB incs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/*.glsl)
  set(outs)
  foreach(comp ${comps})
    get_filename_component(name ${comp} NAME_WE)
    set(out ${CMAKE_BINARY_DIR}/shaders/${name}.spv.h)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/shaders
      COMMAND ${GLSLANG} -V --target-env vulkan1.2 --quiet --vn kb_spv_${name} -o ${out} ${comp}
      DEPENDS ${comp} ${incs}
      COMMENT "glslang ${name}.comp"
      VERBATIM)
    list(APPEND outs ${out})
  endforeach()
  add_custom_target(${target}_shaders DEPENDS ${outs})
  add_dependencies(${target} ${target}_shaders)
endfunction()
