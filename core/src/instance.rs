//! Type erasure for module instances. A registration hands out its module already boxed as
//! the interface its namespace expects (`Box<dyn Handler>`), so a host module asks for that
//! interface and gets a typed value, while the core can still drive the lifecycle through
//! `dyn Module` without knowing the interface.

use std::any::Any;

use crate::lifecycle::Context;
use crate::module::{BoxError, Module};

/// Holds `Box<I>`; sized, so it can itself be used as `dyn Module`.
struct Typed<I: ?Sized>(Box<I>);

impl<I: ?Sized + Module> Module for Typed<I> {
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        self.0.provision(ctx)
    }
    fn validate(&self) -> Result<(), BoxError> {
        self.0.validate()
    }
    fn cleanup(&mut self) -> Result<(), BoxError> {
        self.0.cleanup()
    }
}

trait Erased: Send + Sync {
    fn as_module(&mut self) -> &mut dyn Module;
    fn as_module_ref(&self) -> &dyn Module;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn as_any(&self) -> &dyn Any;
}

impl<I: ?Sized + Module> Erased for Typed<I> {
    fn as_module(&mut self) -> &mut dyn Module {
        self
    }
    fn as_module_ref(&self) -> &dyn Module {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A freshly decoded module, not yet provisioned, boxed as its registered interface.
pub struct ModuleInstance(Box<dyn Erased>);

/// Lets the core hold a module whose interface it does not know (selftest).
impl Module for ModuleInstance {
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        self.as_module().provision(ctx)
    }
    fn validate(&self) -> Result<(), BoxError> {
        self.0.as_module_ref().validate()
    }
    fn cleanup(&mut self) -> Result<(), BoxError> {
        self.as_module().cleanup()
    }
}

impl ModuleInstance {
    /// Wraps a module boxed as interface `I` (`Box<dyn Handler>`, `Box<dyn App>`, ...).
    pub fn new<I: ?Sized + Module>(module: Box<I>) -> Self {
        Self(Box::new(Typed(module)))
    }

    /// The module as the core drives it through the lifecycle.
    pub fn as_module(&mut self) -> &mut dyn Module {
        self.0.as_module()
    }

    /// Whether the module was registered as interface `I`.
    pub fn is<I: ?Sized + Module>(&self) -> bool {
        self.0.as_any().is::<Typed<I>>()
    }

    /// The module as interface `I`, or `None` if it was registered as another interface.
    pub fn into_interface<I: ?Sized + Module>(self) -> Option<Box<I>> {
        self.0
            .into_any()
            .downcast::<Typed<I>>()
            .ok()
            .map(|typed| typed.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Greeter: Module {
        fn greet(&self) -> String;
    }
    trait Other: Module {}

    struct Hello;
    impl Module for Hello {}
    impl Greeter for Hello {
        fn greet(&self) -> String {
            "hello".into()
        }
    }

    #[test]
    fn hands_out_the_registered_interface() {
        let instance = ModuleInstance::new::<dyn Greeter>(Box::new(Hello));
        assert_eq!(
            instance.into_interface::<dyn Greeter>().unwrap().greet(),
            "hello"
        );
    }

    #[test]
    fn refuses_another_interface() {
        let instance = ModuleInstance::new::<dyn Greeter>(Box::new(Hello));
        assert!(instance.is::<dyn Greeter>() && !instance.is::<dyn Other>());
        assert!(instance.into_interface::<dyn Other>().is_none());
        let instance = ModuleInstance::new::<dyn Greeter>(Box::new(Hello));
        assert!(instance.into_interface::<dyn Module>().is_none());
    }
}
