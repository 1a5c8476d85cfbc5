# deploy.cmake - checks of docker/ and deploy/k8s/ without a Docker engine or a
# cluster (scripts in tests/deploy/, npm tools in tools/deploy-check/, installed
# by tools/setup.sh with `npm ci`). Labels "deploy;lint": static, seconds each.
# deploy.gpu_check_cpu (label "deploy"): tools/gpu_check.sh --cpu, minutes.
# tools/check_runtime_chroot.sh (debootstrap, root, the Debian mirror) is not a
# CTest: run it by hand (README, "Deploying").
find_program(CFA_DEPLOY_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(CFA_DEPLOY_NODE NAMES node nodejs)
find_program(CFA_DEPLOY_YAMLLINT NAMES yamllint)
find_program(CFA_DEPLOY_KUBECTL NAMES kubectl)
set(_dp_dir ${PROJECT_SOURCE_DIR}/tests/deploy)
set(_dp_npm ${PROJECT_SOURCE_DIR}/tools/deploy-check)
set(_dp_dockerfiles ${PROJECT_SOURCE_DIR}/docker/Dockerfile ${PROJECT_SOURCE_DIR}/docker/Dockerfile.cuda)

function(cfa_deploy_test name labels)
  add_test(NAME deploy.${name} COMMAND ${ARGN})
  set_tests_properties(deploy.${name} PROPERTIES LABELS "${labels}" TIMEOUT 120
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endfunction()

if(CFA_DEPLOY_PYTHON3)
  cfa_deploy_test(docker_context "deploy;lint" ${CFA_DEPLOY_PYTHON3} ${_dp_dir}/check_docker_context.py
                  --root ${PROJECT_SOURCE_DIR} ${_dp_dockerfiles})
  if(TARGET cfa-server AND TARGET cfa)
    cfa_deploy_test(runtime_libs "deploy;lint" ${CFA_DEPLOY_PYTHON3} ${_dp_dir}/check_runtime_libs.py
                    --packages ${PROJECT_SOURCE_DIR}/docker/runtime-packages.txt
                    $<TARGET_FILE:cfa-server> $<TARGET_FILE:cfa>)
    cfa_deploy_test(k8s_refs "deploy;lint" ${CFA_DEPLOY_PYTHON3} ${_dp_dir}/check_k8s_refs.py
                    --root ${PROJECT_SOURCE_DIR} --server $<TARGET_FILE:cfa-server>)
  endif()
endif()
if(CFA_DEPLOY_YAMLLINT)
  cfa_deploy_test(yamllint "deploy;lint" ${CFA_DEPLOY_YAMLLINT} -s -c ${_dp_dir}/yamllint.yaml
                  ${PROJECT_SOURCE_DIR}/docker/compose.yaml ${PROJECT_SOURCE_DIR}/deploy
                  ${_dp_dir}/yamllint.yaml)
endif()
if(CFA_DEPLOY_NODE)
  # two linters: dockerfilelint (best practices) and dockerfile-utils (the
  # instruction syntax and flags, as Docker parses them)
  cfa_deploy_test(dockerfile_lint "deploy;lint" sh -c
                  "\"$1\" \"$3\" \"$4\" && \"$2\" lint \"$3\" && \"$2\" lint \"$4\"" sh
                  ${_dp_npm}/node_modules/.bin/dockerfilelint
                  ${_dp_npm}/node_modules/.bin/dockerfile-utils ${_dp_dockerfiles})
  file(GLOB _dp_k8s ${PROJECT_SOURCE_DIR}/deploy/k8s/base/*.yaml)
  cfa_deploy_test(k8s_schemas "deploy;lint" ${CFA_DEPLOY_NODE} ${_dp_npm}/validate_k8s.mjs ${_dp_k8s})
  if(CFA_DEPLOY_KUBECTL)
    # what `kubectl apply -k` would send, for the CPU base and the CUDA overlay
    cfa_deploy_test(k8s_kustomize "deploy;lint" bash ${_dp_dir}/k8s_kustomize.sh
                    ${CFA_DEPLOY_KUBECTL} ${CFA_DEPLOY_NODE} ${PROJECT_SOURCE_DIR})
  endif()
endif()

# tools/gpu_check.sh --cpu --quick: the GPU check's every step on cpu, against
# Debian's libtorch and the .debs carried in .deps/debs (fetched first with
# --fetch, which needs apt), in its own build folder beside the build folder
# (BUILD-gpu-check: the same depth, so ccache's relative paths match and the
# objects of the main build are reused)
add_test(NAME deploy.gpu_check_cpu
         COMMAND sh -c "\"$1/tools/gpu_check.sh\" --fetch && \"$1/tools/gpu_check.sh\" --cpu --quick --out \"$2-gpu-check/out\" --build \"$2-gpu-check\" --data \"$3\" --backbone \"$4\""
                 sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR} ${CFA_TEST_DATA_DIR} ${CFA_BACKBONE_PATH})
set_tests_properties(deploy.gpu_check_cpu PROPERTIES LABELS deploy TIMEOUT 1800
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
